//! Instruction sets beyond the build's baseline (SSE2 on x86-64), in one place.
//!
//! Each set has a token type that only detection makes: holding an [`Avx2`] proves this CPU runs
//! AVX2. A token's `run` executes a closure inside a `#[target_feature]` function, so a safe
//! function can use the instructions only after the CPU has been checked, and no safe call can
//! reach an instruction the CPU lacks. Kernels are written once as plain Rust marked
//! `#[inline(always)]`: inlined into that function, they are compiled (vectorised) for its
//! instructions, so the same source serves every set.
//!
//! `run!` runs a kernel with a token; `dispatch!` picks between a token's version and the
//! plain one.

/// Defines a token type for one set of target features: `detect` checks the CPU for every
/// feature in the list, `run` calls a closure compiled with the features enabled.
macro_rules! features {
    ($(#[$doc:meta])* $name:ident, $enable:literal, [$($feature:tt),+]) => {
        $(#[$doc])*
        ///
        /// Made only by `detect`, so holding one proves the CPU has the instructions.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name(());

        impl $name {
            /// The token, if this CPU has the instructions (the standard library caches the
            /// answer, so calling this in a loop costs a load).
            #[inline]
            pub fn detect() -> Option<$name> {
                #[cfg(target_arch = "x86_64")]
                if $(std::arch::is_x86_feature_detected!($feature))&&+ {
                    return Some($name(()));
                }
                None
            }

            /// Runs `f` compiled with the instructions enabled. Code is compiled for them only
            /// once inlined here, so the kernel `f` calls is `#[inline(always)]` and so is `f`
            /// itself: `run!` and `dispatch!` write the closure that way. A plain closure is
            /// optimised on its own first, for the baseline, and only then inlined: the dense
            /// kernel's register tiles were then kept on the stack.
            #[inline]
            pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
                #[cfg(target_arch = "x86_64")]
                {
                    #[target_feature(enable = $enable)]
                    #[inline]
                    fn with_features<R>(f: impl FnOnce() -> R) -> R {
                        f()
                    }
                    // SAFETY: `self` exists only when `detect` found every feature enabled here.
                    unsafe { with_features(f) }
                }
                #[cfg(not(target_arch = "x86_64"))]
                f()
            }
        }
    };
}

features!(
    /// AVX2 (256-bit integer and float vectors).
    Avx2,
    "avx2",
    ["avx2"]
);

features!(
    /// The `popcnt` instruction (baseline x86-64 counts bits with a dozen instructions instead).
    Popcnt,
    "popcnt",
    ["popcnt"]
);

features!(
    /// AVX2 with fused multiply-add.
    Avx2Fma,
    "avx2,fma",
    ["avx2", "fma"]
);

features!(
    /// AVX-512F with AVX2 and fused multiply-add.
    Avx512,
    "avx512f,avx2,fma",
    ["avx512f", "avx2", "fma"]
);

/// `run!(token, kernel(args))` runs `kernel(args)` compiled for the token's instructions,
/// through an `#[inline(always)]` closure (see `run` of the token types for why).
macro_rules! run {
    ($token:expr, $call:expr) => {
        $token.run(
            #[inline(always)]
            || $call,
        )
    };
}
pub(crate) use run;

/// `dispatch!(token, kernel(args))` runs `kernel(args)` compiled for the token's instructions
/// when `token` (an `Option` from `detect`) is `Some`, and as built otherwise.
macro_rules! dispatch {
    ($token:expr, $call:expr) => {
        match $token {
            Some(features) => $crate::simd::run!(features, $call),
            None => $call,
        }
    };
}
pub(crate) use dispatch;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_agree_with_the_cpu_and_run_their_closure() {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            assert_eq!(Avx2::detect().is_some(), has!("avx2"));
            assert_eq!(Popcnt::detect().is_some(), has!("popcnt"));
            assert_eq!(Avx2Fma::detect().is_some(), has!("avx2") && has!("fma"));
            assert_eq!(
                Avx512::detect().is_some(),
                has!("avx512f") && has!("avx2") && has!("fma")
            );
        }
        let sum = |v: &[u32]| v.iter().sum::<u32>();
        let v: Vec<u32> = (0..100).collect();
        assert_eq!(dispatch!(Avx2::detect(), sum(&v)), 4950);
        assert_eq!(dispatch!(None::<Avx512>, sum(&v)), 4950);
    }
}
