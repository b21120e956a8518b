//! Small helpers for strict JSON reading: object keys compared decoded (the JWT claims
//! parser refuses duplicates with them) and the one NumericDate reader (JWT claims,
//! introspection answers and revocation checks all read times through [`numeric_date`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;

/// Largest NumericDate accepted: 2^53 seconds. JSON numbers above it are not exact in the
/// IEEE doubles most parsers use, so two parsers could read different times from them.
pub(crate) const MAX_NUMERIC_DATE: u64 = 1 << 53;

/// Reads a NumericDate (RFC 7519 §2): seconds since the epoch as a JSON number.
///
/// The rule, strict for every caller:
/// - a non-negative integer up to [`MAX_NUMERIC_DATE`] is taken as is;
/// - a finite non-negative float up to [`MAX_NUMERIC_DATE`] is rounded down to whole
///   seconds (`1.9` reads as `1`);
/// - anything else is refused (`None`): strings (`"1700000000"`), negatives, larger
///   numbers (`2^53 + 1`, `1e300`), `null`, booleans, arrays and objects.
///
/// A result fits a `SystemTime` and adding any `u64` leeway to it saturates, never wraps.
pub(crate) fn numeric_date(v: &Value) -> Option<u64> {
    if let Some(u) = v.as_u64() {
        return (u <= MAX_NUMERIC_DATE).then_some(u);
    }
    let f = v.as_f64()?;
    // Exact: 2^53 is a double.
    let max = MAX_NUMERIC_DATE as f64;
    (f.is_finite() && (0.0..=max).contains(&f)).then(|| f.floor() as u64)
}

/// An object key, borrowed from the input when it has no escapes (so duplicate detection
/// compares decoded names: `"n\u0061me"` equals `"name"`).
// Only `jwt` reads keys this way since the operation parser stopped decoding keys it does not read.
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
pub(crate) struct Key<'de>(pub(crate) Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numeric_dates_are_whole_non_negative_seconds_up_to_2_pow_53() {
        assert_eq!(numeric_date(&json!(0)), Some(0));
        assert_eq!(numeric_date(&json!(1_700_000_000u64)), Some(1_700_000_000));
        assert_eq!(numeric_date(&json!(1_700_000_000.9)), Some(1_700_000_000));
        assert_eq!(numeric_date(&json!(-0.0)), Some(0));
        assert_eq!(numeric_date(&json!(1u64 << 53)), Some(1 << 53));
        assert_eq!(numeric_date(&json!(9_007_199_254_740_992.0)), Some(1 << 53));
        for bad in [
            json!((1u64 << 53) + 1),
            json!(u64::MAX),
            json!(i64::MAX),
            json!(9.2e18),
            json!(1e300),
            json!(-1),
            json!(-0.5),
            json!("1700000000"),
            json!(null),
            json!(true),
            json!([1]),
            json!({"t": 1}),
        ] {
            assert_eq!(numeric_date(&bad), None, "{bad}");
        }
    }
}
