//! Environment files read without running them: `KEY=value` lines, with or without
//! `export`, values bare, 'single-quoted' or "double-quoted" — what foreman's `.env` and most
//! `environment_file`s hold. A line that needs a shell to mean something (a command, a
//! `$VAR` in a value) is left out, with a warning naming it.

use super::Losses;

/// The assignments of `text`, in order; `at` names the file in warnings.
pub fn parse(text: &str, at: &str, losses: &mut Losses) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else {
            losses.push(at, format!("line {}: not an assignment; left out", n + 1));
            continue;
        };
        let key = key.trim();
        if key.is_empty()
            || key.starts_with(|c: char| c.is_ascii_digit())
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            losses.push(
                at,
                format!("line {}: {key:?} is not a variable name; left out", n + 1),
            );
            continue;
        }
        match value_of(value.trim()) {
            Some(v) => out.push((key.to_string(), v)),
            None => losses.push(
                at,
                format!(
                    "line {}: the value of {key} needs a shell (a $ expansion, a command or an unclosed quote); left out",
                    n + 1
                ),
            ),
        }
    }
    out
}

/// The value as a shell would read it, when no expansion is involved.
fn value_of(v: &str) -> Option<String> {
    if let Some(rest) = v.strip_prefix('\'') {
        let end = rest.find('\'')?;
        return trailing_ok(&rest[end + 1..]).then(|| rest[..end].to_string());
    }
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return trailing_ok(chars.as_str()).then_some(out),
                '\\' => match chars.next()? {
                    'n' => out.push('\n'),
                    c @ ('"' | '\\' | '$' | '`') => out.push(c),
                    c => {
                        out.push('\\');
                        out.push(c);
                    }
                },
                '$' | '`' => return None,
                c => out.push(c),
            }
        }
        return None;
    }
    // Bare: up to a comment; nothing a shell would expand or split.
    let v = match v.find(" #") {
        Some(i) => v[..i].trim_end(),
        None => v,
    };
    if v.chars().any(|c| {
        matches!(
            c,
            '$' | '`' | '"' | '\'' | ' ' | ';' | '&' | '|' | '(' | ')' | '<' | '>' | '\\'
        )
    }) {
        return None;
    }
    Some(v.to_string())
}

/// After a closing quote: nothing, or a comment.
fn trailing_ok(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_assignments_are_read_and_the_rest_named() {
        let mut losses = Losses::default();
        let got = parse(
            "# comment\nA=1\nexport B='two words'\nC=\"x \\\"q\\\" $$\"\nD=plain # note\nE=$HOME/x\nsource other\n9X=1\nF=\n",
            "f",
            &mut losses,
        );
        let want: Vec<(String, String)> =
            [("A", "1"), ("B", "two words"), ("D", "plain"), ("F", "")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(got, want);
        assert_eq!(
            losses.lines(),
            [
                "[WARNING] f: line 4: the value of C needs a shell (a $ expansion, a command or an unclosed quote); left out",
                "[WARNING] f: line 6: the value of E needs a shell (a $ expansion, a command or an unclosed quote); left out",
                "[WARNING] f: line 7: not an assignment; left out",
                "[WARNING] f: line 8: \"9X\" is not a variable name; left out",
            ]
        );
    }
}
