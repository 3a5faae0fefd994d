//! "Did you mean ...?": the closest known word to a likely typo.

/// Edit distance between two words (insertions, deletions, substitutions).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = Vec::with_capacity(b.len() + 1);
        current.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The closest known word, if it is close enough to be a likely typo of `word`
/// (a third of its letters, at least two).
pub(crate) fn closest<'a, S: AsRef<str>>(word: &str, known: &'a [S]) -> Option<&'a str> {
    nearest(word, known, |k| 2.max(k.chars().count() / 3))
}

/// The closest known word at most `max` edits away.
pub(crate) fn closest_within<'a, S: AsRef<str>>(
    word: &str,
    known: &'a [S],
    max: usize,
) -> Option<&'a str> {
    nearest(word, known, |_| max)
}

fn nearest<'a, S: AsRef<str>>(
    word: &str,
    known: &'a [S],
    max: impl Fn(&str) -> usize,
) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k.as_ref()), k.as_ref()))
        .filter(|(distance, k)| *distance > 0 && *distance <= max(k))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// `` `a`, `b` or `c` ``, for messages.
pub(crate) fn one_of<S: AsRef<str>>(words: &[S]) -> String {
    let quoted: Vec<String> = words.iter().map(|w| format!("`{}`", w.as_ref())).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_words_are_suggested() {
        let keys = ["model", "provider", "operation"];
        assert_eq!(closest("modle", &keys), Some("model"));
        assert_eq!(closest("provder", &keys), Some("provider"));
        assert_eq!(closest("zzzzzz", &keys), None);
        assert_eq!(
            closest("model", &keys),
            None,
            "an exact match is not a typo"
        );
        assert_eq!(
            closest(
                "gen_ai.usage.input_token",
                &["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"]
            ),
            Some("gen_ai.usage.input_tokens")
        );
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
