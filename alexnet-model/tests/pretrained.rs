//! Pretrained weights by name without the internet: a local HTTP server serves a tiny
//! torchvision-layout `.pth` (`fixtures/weights/tv.pth`, written by PyTorch) under a test-only
//! [`WeightsSpec`] whose SHA-256 prefix is that file's, and the download, cache, verification
//! and loading paths run as they do for `AlexNetWeights::TorchvisionImagenet1kV1`.

mod common;
#[path = "../../alexnet-common/tests/support/folders.rs"]
mod folders;
#[path = "../../alexnet-common/tests/support/http_server.rs"]
mod http_server;

use std::path::{Path, PathBuf};

use alexnet_model::download::{fetch, Checksum, RemoteFile};
use alexnet_model::labels::Labels;
use alexnet_model::preprocess::Preprocessing;
use alexnet_model::tensor::HostTensor;
use alexnet_model::weights::read_safetensors;
use alexnet_model::{AlexNetConfig, WeightsSpec};
use burn::backend::NdArray;
use common::{formula_input, max_diff};
use folders::listing;
use http_server::{closed_url, Reply, Server};

/// `sha256sum fixtures/weights/tv.pth` (run when the fixture was written; a regenerated
/// fixture needs the new digest here).
const TV_SHA256: &str = "b7b700519112f841b40792adb00504895aa69e2b22bf0c0e4f73f44f4507e606";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/weights")
        .join(name)
}

/// The file name carries the digest's first 8 digits, as torch hub's names do.
fn file_name() -> String {
    format!("tv-{}.pth", &TV_SHA256[..8])
}

/// A test-only entry named `tiny` for the tiny torchvision network of `tv.pth`, fetched from
/// `url`.
fn spec(url: String) -> WeightsSpec {
    test_entry(
        RemoteFile {
            url,
            file_name: file_name(),
            checksum: Checksum::Sha256(TV_SHA256[..8].into()),
            size: None,
        },
        AlexNetConfig::torchvision(10)
            .with_widths([4, 8, 8, 8, 4])
            .with_hidden(16),
        Preprocessing::default(),
    )
}

fn test_entry(
    file: RemoteFile,
    config: AlexNetConfig,
    preprocessing: Preprocessing,
) -> WeightsSpec {
    WeightsSpec {
        name: "tiny",
        file,
        config,
        preprocessing,
        categories: Labels::parse("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", "test").unwrap(),
        acc1: 0.0,
        acc5: 0.0,
        parameters: 0,
        gflops: 0.0,
        file_size_mib: 0.0,
        source: "test",
    }
}

/// A fresh, empty cache folder, removed when dropped.
struct CacheDir(PathBuf);

impl CacheDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("alexnet-pretrained-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// PyTorch's logits of the tiny torchvision network for the fixture script's 63×63 input
/// x[i] = ((((i·2654435761) mod 2³²) >> 24) − 128) / 64.
fn pytorch_logits() -> HostTensor {
    let bytes = std::fs::read(fixture("reference.safetensors")).unwrap();
    read_safetensors(&bytes).unwrap().0["logits_torchvision"].clone()
}

fn served_file() -> Vec<u8> {
    std::fs::read(fixture("tv.pth")).unwrap()
}

#[test]
fn a_named_entry_is_downloaded_once_verified_and_gives_pytorchs_logits() {
    let route = format!("/models/{}", file_name());
    let server = Server::start(&route, Reply::Body(served_file()));
    let cache = CacheDir::new("once");
    let spec = spec(server.url(&route));

    let path = fetch(&spec.file, &cache.0, false).unwrap();
    assert_eq!(path, cache.0.join(file_name()));
    assert_eq!(listing(&cache.0), vec![file_name()]);
    let model = spec
        .load::<NdArray>(&path, None, &Default::default())
        .unwrap();
    let logits = HostTensor::from_tensor(model.forward(formula_input::<NdArray>(63)));
    let diff = max_diff(&logits, &pytorch_logits());
    assert!(diff <= 1e-4, "logits differ from PyTorch's by {diff}");

    // Reused from the cache: no second request.
    assert_eq!(fetch(&spec.file, &cache.0, false).unwrap(), path);
    assert_eq!(server.requests(), 1);

    // Changed after it was verified: checked again, found wrong, fetched again.
    std::fs::write(&path, b"changed").unwrap();
    assert_eq!(fetch(&spec.file, &cache.0, false).unwrap(), path);
    assert_eq!(server.requests(), 2);
    assert_eq!(std::fs::read(&path).unwrap(), served_file());
}

#[test]
fn a_corrupt_cache_entry_is_replaced_by_a_fresh_download() {
    let route = format!("/{}", file_name());
    let server = Server::start(&route, Reply::Body(served_file()));
    let cache = CacheDir::new("corrupt");
    std::fs::create_dir_all(&cache.0).unwrap();
    std::fs::write(cache.0.join(file_name()), b"half a file").unwrap();

    let path = fetch(&spec(server.url(&route)).file, &cache.0, false).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), served_file());
    assert_eq!(server.requests(), 1);
    assert_eq!(listing(&cache.0), vec![file_name()]);
}

/// Every failure is one line naming the URL and leaves nothing in the cache.
#[test]
fn failed_downloads_leave_the_cache_clean() {
    let route = format!("/{}", file_name());
    let file = served_file();
    let mut wrong = file.clone();
    wrong[100] ^= 1;
    let cases = [
        (Reply::Body(wrong), "SHA-256 checksum mismatch"),
        (
            Reply::Truncated {
                body: file[..1000].to_vec(),
                claimed: file.len(),
            },
            "truncated transfer: received 1000",
        ),
        (Reply::NotFound, "HTTP 404"),
    ];
    for (reply, expected) in cases {
        let server = Server::start(&route, reply);
        let cache = CacheDir::new("fail");
        let url = server.url(&route);
        let err = fetch(&spec(url.clone()).file, &cache.0, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected) && err.contains(&url), "{err}");
        assert!(!err.contains('\n'), "{err}");
        assert!(
            listing(&cache.0).is_empty(),
            "{expected}: {:?}",
            listing(&cache.0)
        );
    }

    // Offline: where to put the file by hand, with its digest.
    let cache = CacheDir::new("offline");
    let url = closed_url(&route);
    let err = fetch(&spec(url.clone()).file, &cache.0, false)
        .unwrap_err()
        .to_string();
    let by_hand = format!(
        "place the file (SHA-256 {}) at {}",
        &TV_SHA256[..8],
        cache.0.join(file_name()).display()
    );
    assert!(err.contains(&url) && err.contains(&by_hand), "{err}");
    assert!(listing(&cache.0).is_empty(), "{:?}", listing(&cache.0));
}

/// A verified file that is not the entry's network is refused, not loaded into another one.
#[test]
fn weights_of_another_network_are_refused() {
    let mut spec = spec(String::new());
    spec.config = spec.config.with_hidden(32);
    let err = spec
        .load::<NdArray>(&fixture("tv.pth"), None, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tv.pth") && err.contains("not the tiny weights' network"),
        "{err}"
    );
}

/// The Caffe entry's path: a `.caffemodel` checked by SHA-1 (as Caffe's model zoo publishes
/// it) and loaded into the paper variant with Caffe's input and LRN, configured as
/// `AlexNetWeights::CaffeBvlcImagenet` is (at the fixture's widths), gives PyTorch's logits.
#[test]
fn a_caffe_entry_loads_into_the_paper_variant_with_pytorchs_logits() {
    // `sha1sum fixtures/caffe/tiny_layer.caffemodel` (written by make_caffe_fixtures.py).
    const SHA1: &str = "3d651e194ddf5bb15ad067ff686028a70a4f9bfd";
    let caffe = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/caffe");
    let route = "/tiny_layer.caffemodel";
    let server = Server::start(
        route,
        Reply::Body(std::fs::read(caffe.join("tiny_layer.caffemodel")).unwrap()),
    );
    let builtin = alexnet_model::AlexNetWeights::CaffeBvlcImagenet.spec();
    let spec = test_entry(
        RemoteFile {
            url: server.url(route),
            file_name: "tiny_layer.caffemodel".into(),
            checksum: Checksum::Sha1(SHA1.into()),
            size: None,
        },
        AlexNetConfig {
            num_classes: 10,
            ..builtin.config
        }
        .with_widths([8, 16, 24, 24, 16])
        .with_hidden(32),
        builtin.preprocessing,
    );
    let cache = CacheDir::new("caffe");
    let path = fetch(&spec.file, &cache.0, false).unwrap();
    let model = spec
        .load::<NdArray>(&path, None, &Default::default())
        .unwrap();

    let bytes = std::fs::read(caffe.join("expected.safetensors")).unwrap();
    let (dict, _) = read_safetensors(&bytes).unwrap();
    // The fixture's input is stored as bytes b; the network saw (b - 128) / 64.
    let input = dict["input"]
        .to_tensor::<NdArray, 4>(&Default::default())
        .sub_scalar(128.0)
        .div_scalar(64.0);
    let logits = HostTensor::from_tensor(model.forward(input));
    let diff = max_diff(&logits, &dict["logits"]);
    assert!(diff <= 1e-4, "logits differ from PyTorch's by {diff}");
}
