//! The 23 feature channels that make_input can compute, with the names the original's
//! `parameters.yaml` uses for them.

use std::fmt;
use std::str::FromStr;

/// One feature channel of the ML input. Every channel is a float map in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Red / 255.
    R,
    /// Green / 255.
    G,
    /// Blue / 255.
    B,
    /// OpenCV 8-bit hue (0..179) / 179.
    H,
    /// OpenCV 8-bit saturation / 255.
    S,
    /// OpenCV 8-bit value / 255.
    V,
    /// Luma of OpenCV's YCrCb / 255.
    Y,
    /// Cr of OpenCV's YCrCb / 255.
    Cr,
    /// Cb of OpenCV's YCrCb / 255.
    Cb,
    /// Lightness L*/100 (the OpenCV 8-bit L value / 255; the original's /100 bug is fixed).
    LabL,
    /// OpenCV 8-bit a (a* + 128) / 255.
    LabA,
    /// OpenCV 8-bit b (b* + 128) / 255.
    LabB,
    /// Chroma sqrt(a*² + b*²), robust-normalised.
    LchC,
    /// sin(hue angle) * 0.5 + 0.5.
    LchSinH,
    /// cos(hue angle) * 0.5 + 0.5.
    LchCosH,
    /// R / (R + G + B).
    RChroma,
    /// G / (R + G + B).
    GChroma,
    /// Opponent R - G, robust-normalised.
    OppO1,
    /// Opponent (R + G) / 2 - B, robust-normalised.
    OppO2,
    /// Intensity (R + G + B) / 3 / 255.
    OppO3,
    /// Sobel gradient magnitude of LAB_L divided by its maximum.
    GradMag,
    /// 3x3 Laplacian of LAB_L, robust-normalised.
    Laplacian,
    /// 3x3 local standard deviation of LAB_L divided by its maximum.
    LocalStd,
}

impl Channel {
    /// Every channel, in the order the word `ALL` selects them.
    pub const ALL: [Channel; 23] = [
        Channel::R,
        Channel::G,
        Channel::B,
        Channel::H,
        Channel::S,
        Channel::V,
        Channel::Y,
        Channel::Cr,
        Channel::Cb,
        Channel::LabL,
        Channel::LabA,
        Channel::LabB,
        Channel::LchC,
        Channel::LchSinH,
        Channel::LchCosH,
        Channel::RChroma,
        Channel::GChroma,
        Channel::OppO1,
        Channel::OppO2,
        Channel::OppO3,
        Channel::GradMag,
        Channel::Laplacian,
        Channel::LocalStd,
    ];

    /// The name used in `parameters.yaml` (and in metadata files).
    pub fn name(self) -> &'static str {
        match self {
            Channel::R => "R",
            Channel::G => "G",
            Channel::B => "B",
            Channel::H => "H",
            Channel::S => "S",
            Channel::V => "V",
            Channel::Y => "Y",
            Channel::Cr => "Cr",
            Channel::Cb => "Cb",
            Channel::LabL => "LAB_L",
            Channel::LabA => "LAB_a",
            Channel::LabB => "LAB_b",
            Channel::LchC => "LCh_C",
            Channel::LchSinH => "LCh_sinH",
            Channel::LchCosH => "LCh_cosH",
            Channel::RChroma => "r_chroma",
            Channel::GChroma => "g_chroma",
            Channel::OppO1 => "Opp_O1",
            Channel::OppO2 => "Opp_O2",
            Channel::OppO3 => "Opp_O3",
            Channel::GradMag => "GradMag",
            Channel::Laplacian => "Laplacian",
            Channel::LocalStd => "LocalStd",
        }
    }

    /// Every valid channel name, for error messages.
    pub fn names() -> Vec<&'static str> {
        Channel::ALL.iter().map(|c| c.name()).collect()
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A channel is written by its name (as in `parameters.yaml`), so metadata files list
/// `[LAB_a, LAB_b]` as the configuration does.
impl serde::Serialize for Channel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Reads a channel name; an unknown name is an error that names it.
impl<'de> serde::Deserialize<'de> for Channel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl FromStr for Channel {
    type Err = String;

    /// Parses a channel name exactly as the original spells it (case-sensitive, since `LAB_a`
    /// and `LAB_L` differ only by case in the original's naming scheme).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown channel `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Channel::ALL {
            assert_eq!(c.name().parse::<Channel>(), Ok(c));
            assert!(seen.insert(c.name()));
        }
        assert_eq!(seen.len(), 23);
        assert!("lab_a".parse::<Channel>().is_err());
    }

    #[test]
    fn serde_uses_the_names() {
        let json = serde_json::to_string(&[Channel::LabL, Channel::RChroma]).unwrap();
        assert_eq!(json, r#"["LAB_L","r_chroma"]"#);
        let back: Vec<Channel> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, vec![Channel::LabL, Channel::RChroma]);
        let e = serde_json::from_str::<Vec<Channel>>(r#"["LAB_x"]"#).unwrap_err();
        assert!(e.to_string().contains("unknown channel `LAB_x`"), "{e}");
    }
}
