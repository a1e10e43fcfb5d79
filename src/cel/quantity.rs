//! Kubernetes resource quantities (`quantity('1.5Gi')`), exact to the
//! nano-unit as `resource.Quantity` is.

use std::any::Any;
use std::cmp::Ordering;

use cel::ExecutionError;
use cel::common::types::Type;
use cel::common::value::{StaticVal, Val};

pub static QUANTITY_TYPE: std::sync::LazyLock<Type> =
    std::sync::LazyLock::new(|| Type::new_opaque_type("kubernetes.Quantity"));

const NANO: i128 = 1_000_000_000;

/// A quantity as a whole number of nano-units (`1m` is 1,000,000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    pub nanos: i128,
}

impl Val for Quantity {
    fn get_type(&self) -> &Type {
        &QUANTITY_TYPE
    }
    fn cel_type() -> &'static Type {
        &QUANTITY_TYPE
    }
    fn equals(&self, other: &dyn Val) -> bool {
        other.downcast_ref::<Quantity>() == Some(self)
    }
    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v> {
        Box::new(*self)
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
}

impl StaticVal for Quantity {}

fn invalid(text: &str) -> ExecutionError {
    ExecutionError::function_error("quantity", format!("invalid quantity '{text}'"))
}

impl Quantity {
    /// Parses the Kubernetes quantity syntax: a signed decimal number, then
    /// a binary suffix (`Ki` … `Ei`), a decimal one (`n` `u` `m` `k` `M` `G`
    /// `T` `P` `E`) or an exponent (`e3`, `E-2`). Below a nano-unit rounds
    /// up, as `resource.Quantity` does.
    pub fn parse(text: &str) -> Result<Quantity, ExecutionError> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid(text));
        }
        let digits = format!("{whole}{fraction}");
        let digits = digits.trim_start_matches('0');
        if digits.len() > 30 {
            return Err(invalid(text));
        }
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| invalid(text))?
        };
        // value = mantissa × 10^(-fraction digits) × multiplier, in nanos.
        let (base2, base10) = suffix_exponents(suffix).ok_or_else(|| invalid(text))?;
        let scale10 = base10 + 9 - fraction.len() as i64;
        let mut nanos = mantissa;
        if base2 > 0 {
            nanos = nanos
                .checked_mul(
                    1i128
                        .checked_shl(base2 as u32)
                        .ok_or_else(|| invalid(text))?,
                )
                .ok_or_else(|| too_large(text))?;
        }
        if scale10 >= 0 {
            let factor = 10i128
                .checked_pow(u32::try_from(scale10).map_err(|_| too_large(text))?)
                .ok_or_else(|| too_large(text))?;
            nanos = nanos.checked_mul(factor).ok_or_else(|| too_large(text))?;
        } else {
            let divisor = u32::try_from(-scale10)
                .ok()
                .and_then(|e| 10i128.checked_pow(e));
            nanos = match divisor {
                Some(d) => (nanos + d - 1) / d,
                None => i128::from(nanos > 0),
            };
        }
        Ok(Quantity {
            nanos: if negative { -nanos } else { nanos },
        })
    }

    /// A whole number that fits an int64.
    pub fn as_integer(&self) -> Option<i64> {
        if self.nanos % NANO != 0 {
            return None;
        }
        i64::try_from(self.nanos / NANO).ok()
    }

    pub fn as_float(&self) -> f64 {
        self.nanos as f64 / NANO as f64
    }

    pub fn add(&self, other: Quantity) -> Result<Quantity, ExecutionError> {
        self.nanos
            .checked_add(other.nanos)
            .map(|nanos| Quantity { nanos })
            .ok_or_else(|| too_large("sum"))
    }

    pub fn from_int(value: i64) -> Quantity {
        Quantity {
            nanos: i128::from(value) * NANO,
        }
    }

    pub fn compare(&self, other: &Quantity) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

fn too_large(text: &str) -> ExecutionError {
    ExecutionError::function_error(
        "quantity",
        format!("quantity '{text}' is too large to hold exactly"),
    )
}

/// The powers of two and ten a suffix multiplies by.
fn suffix_exponents(suffix: &str) -> Option<(i64, i64)> {
    Some(match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        exponent => {
            let digits = exponent
                .strip_prefix('e')
                .or_else(|| exponent.strip_prefix('E'))?;
            let unsigned = digits.trim_start_matches(['+', '-']);
            if unsigned.is_empty()
                || !unsigned.bytes().all(|b| b.is_ascii_digit())
                || digits.len() - unsigned.len() > 1
                || unsigned.len() > 3
            {
                return None;
            }
            (0, digits.parse().ok()?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_scale_exactly() {
        let q = |s: &str| Quantity::parse(s).unwrap().nanos;
        assert_eq!(q("1"), NANO);
        assert_eq!(q("1Ki"), 1024 * NANO);
        assert_eq!(q("1.5Gi"), 3 * (1 << 29) * NANO);
        assert_eq!(q("100m"), NANO / 10);
        assert_eq!(q("1e3"), 1000 * NANO);
        assert_eq!(q("-2k"), -2000 * NANO);
        assert_eq!(q("0.5n"), 1, "below a nano-unit rounds up");
        assert_eq!(q("1000m"), q("1"));
    }

    #[test]
    fn malformed_quantities_are_errors() {
        for bad in ["", "abc", "1.2.3", "1Xi", "1e", "--1", "1 Gi", "."] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }
}
