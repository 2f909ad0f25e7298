//! `${name}` substitution in push strings; `$${` writes a literal `${`.

use std::collections::BTreeMap;
use std::ops::Range;

/// What went wrong with one `${...}` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VarIssue {
    /// `${name}` with no such variable.
    Undefined(String),
    /// `${` without a closing `}`.
    Unterminated,
    /// `${...}` whose name is not `[A-Za-z_][A-Za-z0-9_-]*`.
    BadName(String),
    /// The text grew past [`MAX_EXPANDED`] bytes (the limit is carried); the rest is not
    /// substituted.
    TooLong(usize),
}

/// The longest text a substitution may produce. A path names one file (Linux allows 4 KiB);
/// without a limit, a 1 MB var used a thousand times in one string would build a gigabyte
/// before any rule looked at it.
pub(crate) const MAX_EXPANDED: usize = 1 << 20;

/// The result of substituting one string.
#[derive(Debug, Clone, Default)]
pub(crate) struct Substituted {
    /// The text with every reference replaced (valid only when `issues` is empty).
    pub(crate) text: String,
    /// Problems, each with its byte range in the input string (the whole `${...}`).
    pub(crate) issues: Vec<(Range<usize>, VarIssue)>,
}

/// True for a name `${...}` may reference.
pub(crate) fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Replaces every `${name}` in `input` with its value from `vars`, producing at most `limit`
/// bytes (a [`VarIssue::TooLong`] stops it there). `used` is told each name referenced
/// (defined or not), in order: a list of them was an allocation per substituted string.
pub(crate) fn substitute<'a>(
    input: &'a str,
    vars: &BTreeMap<String, String>,
    limit: usize,
    mut used: impl FnMut(&'a str),
) -> Substituted {
    let mut out = Substituted {
        text: String::with_capacity(input.len()),
        ..Substituted::default()
    };
    let mut rest = input;
    let mut offset = 0;
    while let Some(i) = rest.find('$') {
        out.text.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(escaped) = after.strip_prefix("$${") {
            out.text.push_str("${");
            rest = escaped;
            offset += i + 3;
        } else if let Some(body) = after.strip_prefix("${") {
            let start = offset + i;
            match body.find('}') {
                Some(end) => {
                    let name = &body[..end];
                    let range = start..start + 2 + end + 1;
                    if !is_var_name(name) {
                        out.issues.push((range, VarIssue::BadName(name.to_owned())));
                    } else {
                        used(name);
                        match vars.get(name) {
                            Some(value) if out.text.len() + value.len() > limit => {
                                out.issues.push((range, VarIssue::TooLong(limit)));
                                return out;
                            }
                            Some(value) => out.text.push_str(value),
                            None => out
                                .issues
                                .push((range, VarIssue::Undefined(name.to_owned()))),
                        }
                    }
                    rest = &body[end + 1..];
                    offset = start + 2 + end + 1;
                }
                None => {
                    out.issues
                        .push((start..offset + rest.len(), VarIssue::Unterminated));
                    return out;
                }
            }
        } else {
            out.text.push('$');
            rest = &after[1..];
            offset += i + 1;
        }
    }
    if out.text.len() + rest.len() > limit {
        out.issues
            .push((offset..offset + rest.len(), VarIssue::TooLong(limit)));
        return out;
    }
    out.text.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("version".to_owned(), "1.4.2".to_owned())].into()
    }

    #[test]
    fn substitutes_and_escapes() {
        let mut used = Vec::new();
        let s = substitute(
            "/a/app-${version}.tgz $$ $${x} ${version}",
            &vars(),
            MAX_EXPANDED,
            |name| used.push(name),
        );
        assert!(s.issues.is_empty());
        assert_eq!(s.text, "/a/app-1.4.2.tgz $$ ${x} 1.4.2");
        assert_eq!(used, ["version", "version"]);
    }

    #[test]
    fn stops_at_the_expansion_limit() {
        let vars = [("v".to_owned(), "x".repeat(MAX_EXPANDED / 4 + 1))].into();
        let s = substitute("/${v}${v}${v}${v}${v}", &vars, MAX_EXPANDED, |_| {});
        assert_eq!(s.issues, vec![(13..17, VarIssue::TooLong(MAX_EXPANDED))]);
        assert!(s.text.len() <= MAX_EXPANDED);
    }

    #[test]
    fn reports_each_issue_with_its_range() {
        let s = substitute("/${nope}/${bad name}/${open", &vars(), MAX_EXPANDED, |_| {});
        assert_eq!(
            s.issues,
            vec![
                (1..8, VarIssue::Undefined("nope".into())),
                (9..20, VarIssue::BadName("bad name".into())),
                (21..27, VarIssue::Unterminated),
            ]
        );
    }
}
