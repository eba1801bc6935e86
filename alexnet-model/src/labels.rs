//! Class labels: ImageNet's 1000 classes (built in) or any other set from a file.

use std::path::Path;

use crate::error::AlexNetError;
use crate::files::{read_text_file, MAX_TEXT_BYTES};

/// The ILSVRC-2012 classes in torchvision's index order: `index<TAB>wordnet_id<TAB>label`.
const IMAGENET_TSV: &str = include_str!("../../data/imagenet-classes.tsv");

/// One class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassLabel {
    /// WordNet id (`n01440764`) where the file gives one.
    pub wordnet_id: Option<String>,
    /// Human-readable name.
    pub name: String,
}

/// Class labels in index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labels {
    /// Class `i` is `classes[i]`.
    pub classes: Vec<ClassLabel>,
}

impl Labels {
    /// ImageNet's 1000 classes, as torchvision's pretrained models number them.
    pub fn imagenet() -> Self {
        Self::parse(IMAGENET_TSV, "built-in imagenet-classes.tsv").expect("built-in labels parse")
    }

    /// Reads a label file: either `index<TAB>wordnet_id<TAB>label` lines (like
    /// `data/imagenet-classes.tsv`) or one label per line (like CIFAR's `batches.meta.txt`).
    /// Only a regular file of at most [`MAX_TEXT_BYTES`] is read (a FIFO, a device such as
    /// `/dev/zero` or a directory is refused before reading).
    pub fn from_file(path: &Path) -> Result<Self, AlexNetError> {
        let text = read_text_file(path, MAX_TEXT_BYTES).map_err(|e| match e {
            AlexNetError::Input(message) => AlexNetError::Input(format!("labels {message}")),
            other => other,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses label text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<Self, AlexNetError> {
        let mut classes = Vec::new();
        for (line_no, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            let class = match fields.as_slice() {
                [index, wordnet_id, name] => {
                    let expected = classes.len();
                    if index.trim().parse::<usize>() != Ok(expected) {
                        return Err(AlexNetError::Input(format!(
                            "{source} line {}: index `{index}` where {expected} was expected",
                            line_no + 1
                        )));
                    }
                    ClassLabel {
                        wordnet_id: Some(wordnet_id.trim().to_string()),
                        name: name.trim().to_string(),
                    }
                }
                [name] => ClassLabel {
                    wordnet_id: None,
                    name: name.trim().to_string(),
                },
                _ => {
                    return Err(AlexNetError::Input(format!(
                        "{source} line {}: expected `label` or `index<TAB>wordnet_id<TAB>label`",
                        line_no + 1
                    )))
                }
            };
            classes.push(class);
        }
        if classes.is_empty() {
            return Err(AlexNetError::Input(format!("{source}: no labels")));
        }
        Ok(Self { classes })
    }

    /// Number of classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether there are no classes (never true for a parsed file).
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// The name of class `index`, or `class <index>` beyond the list.
    pub fn name(&self, index: usize) -> String {
        self.classes
            .get(index)
            .map_or_else(|| format!("class {index}"), |c| c.name.clone())
    }

    /// The index of a class given by WordNet id or by name (folder names in image datasets).
    pub fn index_of(&self, folder: &str) -> Option<usize> {
        self.classes
            .iter()
            .position(|c| c.wordnet_id.as_deref() == Some(folder))
            .or_else(|| self.classes.iter().position(|c| c.name == folder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_has_1000_classes_in_torchvision_order() {
        let labels = Labels::imagenet();
        assert_eq!(labels.len(), 1000);
        assert_eq!(labels.name(0), "tench");
        assert_eq!(labels.index_of("n01440764"), Some(0));
        assert_eq!(labels.name(1000), "class 1000");
    }

    #[test]
    fn plain_label_files() {
        let labels = Labels::parse("airplane\nautomobile\n\n", "meta").unwrap();
        assert_eq!(labels.len(), 2);
        assert_eq!(labels.index_of("automobile"), Some(1));
    }

    #[test]
    fn malformed_label_files_are_errors() {
        let err = Labels::parse("0\tn1\ta\n5\tn2\tb\n", "x.tsv").unwrap_err();
        assert!(err.to_string().contains("x.tsv line 2"), "{err}");
        assert!(Labels::parse("a\tb\n", "y").is_err());
        assert!(Labels::parse("\n", "z").is_err());
    }

    /// `/dev/zero` and a directory as `--labels`: refused before reading (reading /dev/zero
    /// would never end).
    #[test]
    fn label_files_must_be_regular_files() {
        #[cfg(unix)]
        {
            let err = Labels::from_file(Path::new("/dev/zero")).unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid input: labels /dev/zero: is a character device, not a regular file"
            );
        }
        let err = Labels::from_file(&std::env::temp_dir()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }
}
