//! Fuzzing the readers on stable, in the normal test suite: real files with random bytes
//! changed, inserted or cut, and random bytes, fed to the `.pth` (zip and legacy),
//! safetensors and Burnpack readers and to the image decoder. Every input must end in `Ok` or
//! a one-line error, never a panic, a hang or an allocation past the readers' limits.
//!
//! Each property runs 64 cases by default; `PROPTEST_CASES=5000 cargo test --release
//! --workspace --test fuzz` is the longer run (README, "Bad input").

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alexnet_model::checkpoint::{load_model, read_state_dict, save_model, WeightFormat};
use alexnet_model::preprocess::decode_rgb;
use proptest::prelude::*;

type B = burn::backend::NdArray;

/// Far above any reader's time on these small inputs: only a hang exceeds it.
const HANG: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/weights");
    std::fs::read(path.join(name)).unwrap()
}

/// A change to a file: overwrite, insert or delete bytes at a position, or cut the file.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let bytes = prop::collection::vec(any::<u8>(), 1..9);
    prop_oneof![
        4 => (any::<usize>(), bytes.clone()).prop_map(|(at, b)| Edit::Set(at, b)),
        1 => (any::<usize>(), bytes).prop_map(|(at, b)| Edit::Insert(at, b)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            Edit::Set(at, new) => {
                for (i, b) in new.iter().enumerate() {
                    let at = (at % len + i).min(bytes.len().saturating_sub(1));
                    if let Some(slot) = bytes.get_mut(at) {
                        *slot = *b;
                    }
                }
            }
            Edit::Insert(at, new) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            Edit::Truncate(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

/// A fresh temporary file holding `bytes`, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn with(name: &str, bytes: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "alexnet-fuzz-{}-{:?}-{name}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, bytes).unwrap();
        Temp(path)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Reads the file as weights and builds a model from it: `Ok`, or one line naming the file.
fn read_weights(path: &Path) {
    let started = Instant::now();
    if let Err(e) = read_state_dict(path) {
        let text = e.to_string();
        assert!(!text.contains('\n'), "not one line: {text}");
        assert!(text.contains(&path.display().to_string()), "{text}");
    }
    if let Err(e) = load_model::<B>(path, None, None, &Default::default()) {
        assert!(!e.to_string().contains('\n'), "not one line: {e}");
    }
    assert!(started.elapsed() < HANG, "{:?}", started.elapsed());
}

fn burnpack() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/weights/tv.pth");
    let model = load_model::<B>(&path, None, None, &Default::default()).unwrap();
    let out = Temp::with("source.bpk", b"");
    save_model(&model, &out.0, WeightFormat::Burn).unwrap();
    std::fs::read(&out.0).unwrap()
}

fn image(format: image::ImageFormat) -> Vec<u8> {
    let img = image::RgbImage::from_fn(23, 17, |x, y| image::Rgb([x as u8 * 11, y as u8 * 13, 7]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    img.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn pytorch_zip_files_with_changed_bytes(edits in prop::collection::vec(edit(), 1..4)) {
        let file = Temp::with("zip.pth", &apply(fixture("tv.pth"), &edits));
        read_weights(&file.0);
    }

    #[test]
    fn pytorch_zip_views_with_changed_bytes(edits in prop::collection::vec(edit(), 1..4)) {
        let file = Temp::with("views.pth", &apply(fixture("views/sliced.pth"), &edits));
        read_weights(&file.0);
    }

    #[test]
    fn pytorch_legacy_files_with_changed_bytes(edits in prop::collection::vec(edit(), 1..4)) {
        let file = Temp::with("legacy.pth", &apply(fixture("tv_legacy.pth"), &edits));
        read_weights(&file.0);
    }

    #[test]
    fn safetensors_files_with_changed_bytes(edits in prop::collection::vec(edit(), 1..4)) {
        let file = Temp::with("st.safetensors", &apply(fixture("tv.safetensors"), &edits));
        read_weights(&file.0);
    }

    #[test]
    fn burnpack_files_with_changed_bytes(edits in prop::collection::vec(edit(), 1..4)) {
        thread_local!(static SOURCE: Vec<u8> = burnpack());
        let bytes = SOURCE.with(|source| apply(source.clone(), &edits));
        let file = Temp::with("bp.bpk", &bytes);
        read_weights(&file.0);
    }

    #[test]
    fn random_bytes_as_weights(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let file = Temp::with("random.pth", &bytes);
        read_weights(&file.0);
    }

    #[test]
    fn images_with_changed_bytes(
        format in prop_oneof![
            Just(image::ImageFormat::Png),
            Just(image::ImageFormat::Jpeg),
            Just(image::ImageFormat::Bmp),
            Just(image::ImageFormat::Gif),
        ],
        edits in prop::collection::vec(edit(), 1..4),
    ) {
        let bytes = apply(image(format), &edits);
        let started = Instant::now();
        if let Err(e) = decode_rgb(&bytes) {
            prop_assert!(!e.to_string().contains('\n'), "not one line: {e}");
        }
        prop_assert!(started.elapsed() < HANG);
    }
}
