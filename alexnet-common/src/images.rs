//! Finding image files: by extension, in sorted order, in class folders or recursively.
//!
//! Recursive walks follow symbolic links but detect loops (a link back to a folder being
//! walked is an error naming it, never an endless walk).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// File extensions read as images inside folders (case-insensitive). Files named explicitly
/// on a command line are tried whatever their extension.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff", "jfif",
];

/// Whether a file name has one of the [`IMAGE_EXTENSIONS`].
pub fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The entries of `dir`, sorted by path.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let context = || format!("cannot read folder {}", dir.display());
    let mut entries = std::fs::read_dir(dir)
        .with_context(context)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(context)?;
    entries.sort();
    Ok(entries)
}

/// The sub-folders of `dir` as `(name, path)`, sorted by name (torchvision's `ImageFolder`
/// classes).
pub fn class_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|path| path.is_dir())
        .map(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            (name.into_owned(), path)
        })
        .collect())
}

/// The image files directly inside `dir`, sorted.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(sorted_entries(dir)?
        .into_iter()
        .filter(|path| path.is_file() && is_image_name(path))
        .collect())
}

/// The images of a split whose class folders are named in `classes`, labelled by the
/// position of their folder's name: `dir/<class>/<inner>/<image>` (`inner` empty: directly in
/// the class folder). A class may have no folder; a folder that is not a class is an error
/// naming it.
pub fn labelled_files(
    dir: &Path,
    classes: &[String],
    inner: &str,
) -> Result<Vec<(PathBuf, usize)>> {
    let mut items = Vec::new();
    for (name, path) in class_folders(dir)? {
        let Some(label) = classes.iter().position(|c| *c == name) else {
            anyhow::bail!(
                "{}: class folder `{name}` is not one of the dataset's classes",
                dir.display()
            );
        };
        let path = if inner.is_empty() {
            path
        } else {
            path.join(inner)
        };
        items.extend(image_files(&path)?.into_iter().map(|file| (file, label)));
    }
    Ok(items)
}

/// The image files anywhere below `dir`, sorted.
pub fn image_files_recursive(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true) {
        let entry = entry.map_err(|e| {
            let place = e.path().unwrap_or(dir).display().to_string();
            match e.loop_ancestor() {
                Some(ancestor) => anyhow::anyhow!(
                    "{place}: a symbolic link loops back to {}",
                    ancestor.display()
                ),
                None => anyhow::anyhow!("cannot read {place}: {e}"),
            }
        })?;
        // Links are followed, so this is the target's type: FIFOs, devices and sockets named
        // like images are left out, never opened.
        if entry.file_type().is_file() && is_image_name(entry.path()) {
            found.push(entry.into_path());
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert!(is_image_name(Path::new("a/b.JPG")));
        assert!(!is_image_name(Path::new("a/b.txt")));
        assert!(!is_image_name(Path::new("a/jpg")));
    }

    #[test]
    fn folders_are_walked_in_order() {
        let root = std::env::temp_dir().join(format!("alexnet-images-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for file in ["b/2.png", "b/1.jpg", "a/x.txt", "a/deep/3.png", "0.bmp"] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"").unwrap();
        }
        let names: Vec<String> = class_folders(&root)
            .unwrap()
            .into_iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            image_files(&root.join("b")).unwrap(),
            [root.join("b/1.jpg"), root.join("b/2.png")]
        );
        assert_eq!(
            image_files_recursive(&root).unwrap(),
            [
                root.join("0.bmp"),
                root.join("a/deep/3.png"),
                root.join("b/1.jpg"),
                root.join("b/2.png")
            ]
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&root, root.join("a/loop")).unwrap();
            let err = image_files_recursive(&root).unwrap_err().to_string();
            assert!(err.contains("loops back"), "{err}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A folder holding two symbolic links to itself (`a -> .`, `b -> .`): the walk ends at
    /// once with an error naming the loop; FIFOs named like images are never listed (so
    /// never opened), in recursive and flat listings alike.
    #[cfg(unix)]
    #[test]
    fn self_links_end_the_walk_and_fifos_are_skipped() {
        let root = std::env::temp_dir().join(format!("alexnet-walk-loop-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("plain")).unwrap();
        std::fs::write(root.join("plain/1.png"), b"").unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(root.join("plain/pipe.jpg"))
            .status()
            .unwrap();
        assert!(made.success());
        assert_eq!(
            image_files_recursive(&root.join("plain")).unwrap(),
            [root.join("plain/1.png")]
        );
        assert_eq!(
            image_files(&root.join("plain")).unwrap(),
            [root.join("plain/1.png")]
        );
        let looped = root.join("looped");
        std::fs::create_dir_all(&looped).unwrap();
        std::os::unix::fs::symlink(".", looped.join("a")).unwrap();
        std::os::unix::fs::symlink(".", looped.join("b")).unwrap();
        let start = std::time::Instant::now();
        let err = image_files_recursive(&looped).unwrap_err().to_string();
        assert!(start.elapsed().as_secs() < 5);
        assert!(err.contains("a symbolic link loops back to"), "{err}");
        assert!(
            err.contains("looped/a") || err.contains("looped/b"),
            "{err}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
