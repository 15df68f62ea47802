//! Fail closed on numbers that are not numbers: a NaN or infinite value in an image, an error
//! map or a score map must never turn into a score that compares as "good" (every comparison
//! with NaN is false), so such values stop the image with an error that says where they are.

/// Values that are not finite numbers, where a finite number was needed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{what}: {count} of {len} value(s) are not finite numbers (first at index {first}: {value}); no verdict is given for it"
)]
pub struct NonFinite {
    /// What was checked (names the image and the stage).
    pub what: String,
    /// How many values are NaN or infinite.
    pub count: usize,
    /// How many values were checked.
    pub len: usize,
    /// The index of the first one.
    pub first: usize,
    /// The first one.
    pub value: f32,
}

/// Checks that every value is a finite number; `what` names the data in the error.
pub fn ensure_finite<'a>(
    values: impl IntoIterator<Item = &'a f32>,
    what: impl FnOnce() -> String,
) -> Result<(), NonFinite> {
    let mut count = 0;
    let mut len = 0;
    let mut first = None;
    for (i, &v) in values.into_iter().enumerate() {
        len += 1;
        if !v.is_finite() {
            count += 1;
            first.get_or_insert((i, v));
        }
    }
    match first {
        None => Ok(()),
        Some((first, value)) => Err(NonFinite {
            what: what(),
            count,
            len,
            first,
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_infinity_are_refused_with_their_place() {
        assert!(ensure_finite(&[0.0, 1.5, -3.0], || "x".into()).is_ok());
        let e =
            ensure_finite(&[0.0, f32::NAN, f32::INFINITY], || "map of a.png".into()).unwrap_err();
        assert_eq!((e.count, e.len, e.first), (2, 3, 1));
        let msg = e.to_string();
        assert!(msg.starts_with("map of a.png: 2 of 3"), "{msg}");
        assert!(msg.contains("NaN"), "{msg}");
    }
}
