//! Names as the rule table keeps them: ASCII lower case, punycode for Unicode, no trailing
//! dot, checked label by label.

use super::Skip;

/// Normalises a domain name: ASCII lower case, punycode for Unicode, no trailing dot, and
/// checks it: labels of 1 to 63 letters, digits, `-` or `_`, 253 characters in all.
pub fn normalise(name: &str) -> Result<String, Skip> {
    let mut out = String::new();
    normalise_into(name, &mut out).map(|()| out)
}

/// [`normalise`] into a buffer the caller reuses: no allocation per name.
pub fn normalise_into(name: &str, out: &mut String) -> Result<(), Skip> {
    let name = name.strip_suffix('.').unwrap_or(name);
    out.clear();
    if name.is_ascii() {
        out.push_str(name);
        out.make_ascii_lowercase();
    } else {
        out.push_str(&idna::domain_to_ascii(name).map_err(|_| Skip::InvalidName)?);
    }
    // One pass: labels of 1 to 63 letters, digits, '-' or '_', 253 characters in all.
    let bytes = out.as_bytes();
    if bytes.is_empty() || bytes.len() > 253 {
        return Err(Skip::InvalidName);
    }
    let mut label = 0usize;
    for &b in bytes {
        if b == b'.' {
            if label == 0 {
                return Err(Skip::InvalidName);
            }
            label = 0;
        } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            label += 1;
            if label > 63 {
                return Err(Skip::InvalidName);
            }
        } else {
            return Err(Skip::InvalidName);
        }
    }
    if label == 0 {
        Err(Skip::InvalidName)
    } else {
        Ok(())
    }
}
