//! Flag values both command lines parse.

/// Parses `R,G,B` (`--mean`, `--std`).
pub fn parse_triple(text: &str) -> Result<[f32; 3], String> {
    let values: Vec<f32> = text
        .split(',')
        .map(|v| v.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("expected three numbers `R,G,B`: {e}"))?;
    values
        .try_into()
        .map_err(|v: Vec<f32>| format!("expected three numbers, got {}", v.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples() {
        assert_eq!(parse_triple("0.5, 1,2").unwrap(), [0.5, 1.0, 2.0]);
        assert!(parse_triple("1,2").unwrap_err().contains("got 2"));
        assert!(parse_triple("1,x,2").is_err());
    }
}
