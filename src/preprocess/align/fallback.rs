//! Validation's choice of reference: an ordered set of candidate references, each prepared on
//! first use, and the alignment to the first that passes the quality gates.

use std::sync::OnceLock;

use image::RgbaImage;

use super::{AlignError, AlignParams, Aligned, Reference, align_pair};

/// Where a candidate reference's pixels come from.
enum Source<'a> {
    Image(RgbaImage),
    Loader(Box<dyn Fn() -> Result<RgbaImage, String> + Send + Sync + 'a>),
}

/// An ordered list of candidate references (the first is the one to use; the others are
/// fallbacks), each prepared on first use and kept, so a validation run prepares only the
/// fallbacks it needs. Safe to share between threads.
#[derive(Default)]
pub struct ReferenceSet<'a> {
    names: Vec<String>,
    sources: Vec<Source<'a>>,
    prepared: Vec<OnceLock<Result<Reference, String>>>,
}

impl<'a> ReferenceSet<'a> {
    /// An empty set.
    pub fn new() -> Self {
        ReferenceSet {
            names: Vec::new(),
            sources: Vec::new(),
            prepared: Vec::new(),
        }
    }

    /// Appends a candidate given by its pixels.
    pub fn push_image(&mut self, name: impl Into<String>, img: RgbaImage) {
        self.names.push(name.into());
        self.sources.push(Source::Image(img));
        self.prepared.push(OnceLock::new());
    }

    /// Appends a candidate read on first use by `load` (e.g. from a file); an `Err` message
    /// makes that candidate fail, and the next one is tried.
    pub fn push_loader<F>(&mut self, name: impl Into<String>, load: F)
    where
        F: Fn() -> Result<RgbaImage, String> + Send + Sync + 'a,
    {
        self.names.push(name.into());
        self.sources.push(Source::Loader(Box::new(load)));
        self.prepared.push(OnceLock::new());
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True without candidates.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Name of candidate `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }

    /// Candidate `i`, prepared with `params` on first use (later calls reuse that preparation,
    /// so pass the same `params` every time).
    pub fn get(&self, i: usize, params: &AlignParams) -> Result<&Reference, AlignError> {
        let Some(slot) = self.prepared.get(i) else {
            return Err(AlignError::Reference(format!("no reference number {i}")));
        };
        slot.get_or_init(|| match &self.sources[i] {
            Source::Image(img) => Ok(Reference::new(img, params)),
            Source::Loader(load) => load().map(|img| Reference::new(&img, params)),
        })
        .as_ref()
        .map_err(|e| AlignError::Reference(e.clone()))
    }
}

/// The result of [`align_with_fallback`].
#[derive(Debug, Clone)]
pub struct Chosen {
    /// Index of the reference used in the [`ReferenceSet`].
    pub reference: usize,
    /// The alignment to it.
    pub aligned: Aligned,
    /// The candidates tried before it and why each was passed over.
    pub passed_over: Vec<(usize, AlignError)>,
}

/// No candidate reference passed the gates.
#[derive(Debug, Clone)]
pub struct AlignFailure {
    /// Every candidate tried, with why it failed.
    pub attempts: Vec<(usize, AlignError)>,
    /// The alignment with the highest SSIM among those that produced one (the original PIXAL
    /// used it anyway; the caller decides).
    pub best: Option<(usize, Box<Aligned>)>,
}

impl std::fmt::Display for AlignFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.attempts.is_empty() {
            return write!(f, "no reference to align to");
        }
        write!(f, "could not be aligned to ")?;
        if self.attempts.len() == 1 {
            write!(f, "the reference: {}", self.attempts[0].1)
        } else {
            write!(f, "any of {} references:", self.attempts.len())?;
            for (i, e) in &self.attempts {
                write!(f, " [{i}] {e};")?;
            }
            Ok(())
        }
    }
}

impl std::error::Error for AlignFailure {}

/// Aligns `photo` to the first candidate of `references` (the training reference); only when
/// that fails — no alignment, or one that misses the SSIM/MSE gates — are the other candidates
/// tried, in order, and the first that passes is taken. The homography maps the photo to the
/// reference frame whichever candidate was used, since every candidate is already in it.
pub fn align_with_fallback(
    photo: &RgbaImage,
    references: &ReferenceSet<'_>,
    params: &AlignParams,
) -> Result<Chosen, AlignFailure> {
    let mut attempts: Vec<(usize, AlignError)> = Vec::new();
    let mut best: Option<(usize, Box<Aligned>)> = None;
    for i in 0..references.len() {
        let r = references
            .get(i, params)
            .and_then(|r| align_pair(photo, r, params));
        match r {
            Ok(a) => match a.check_gates(params) {
                Ok(()) => {
                    return Ok(Chosen {
                        reference: i,
                        aligned: a,
                        passed_over: attempts,
                    });
                }
                Err(e) => {
                    attempts.push((i, e));
                    if best.as_ref().is_none_or(|b| a.ssim > b.1.ssim) {
                        best = Some((i, Box::new(a)));
                    }
                }
            },
            Err(e) => attempts.push((i, e)),
        }
    }
    Err(AlignFailure { attempts, best })
}
