//! The secrets this run has handled, masked in everything written to the
//! debug log. The log's filter already keeps out what would carry them
//! (request and response bodies); this is the second fence, for a secret
//! that reaches a log line some other way (an error message quoting it).

use std::sync::{Mutex, OnceLock};

/// What stands in a log line where a secret was.
pub const MASK: &str = "<redacted>";

/// Shorter strings are not masked: they would mask ordinary words.
const SHORTEST_SECRET: usize = 8;

fn registry() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| Mutex::new(Vec::new()))
}

/// Remembers `value` as a secret for the rest of the process, with the
/// forms it takes inside a JSON string and a form-encoded AWS request.
pub fn secret(value: &str) {
    let mut forms = vec![value.to_string()];
    for line in value.lines().map(str::trim) {
        // A private key's body lines leak it as much as the whole text.
        forms.push(line.to_string());
    }
    forms.push(json_escaped(value));
    forms.push(form_encoded(value));
    let mut secrets = registry().lock().unwrap_or_else(|e| e.into_inner());
    for form in forms {
        if form.len() >= SHORTEST_SECRET && !secrets.contains(&form) {
            secrets.push(form);
        }
    }
    // Longest first, so a whole secret is masked before a part of it.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every known secret replaced by [`MASK`].
pub fn scrub(text: &str) -> String {
    let secrets = registry().lock().unwrap_or_else(|e| e.into_inner());
    let mut text = text.to_string();
    for secret in secrets.iter() {
        if text.contains(secret.as_str()) {
            text = text.replace(secret.as_str(), MASK);
        }
    }
    text
}

fn json_escaped(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_string()
}

/// `application/x-www-form-urlencoded`, as the query protocols (EC2, IAM)
/// send values.
fn form_encoded(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_a_secret_is_masked() {
        secret("p4ss/w+rd\"quoted\"");
        let line =
            "put p4ss/w+rd\"quoted\" json p4ss/w+rd\\\"quoted\\\" form p4ss%2Fw%2Brd%22quoted%22";
        let scrubbed = scrub(line);
        assert!(!scrubbed.contains("p4ss"), "{scrubbed}");
        assert_eq!(scrubbed.matches(MASK).count(), 3, "{scrubbed}");
    }

    #[test]
    fn the_lines_of_a_private_key_are_masked_one_by_one() {
        secret("-----BEGIN KEY-----\nAAAAbodyline1111\nBBBBbodyline2222\n-----END KEY-----\n");
        assert_eq!(scrub("x BBBBbodyline2222 y"), format!("x {MASK} y"));
    }

    #[test]
    fn short_values_and_other_text_are_left_alone() {
        secret("abc");
        assert_eq!(scrub("abc and more"), "abc and more");
    }
}
