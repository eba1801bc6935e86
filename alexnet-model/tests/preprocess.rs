//! Preprocessing against Pillow and torchvision: reference files written by
//! `fixtures/make_preprocess_fixtures.py` into `fixtures/preprocess/`.

use std::path::{Path, PathBuf};

use alexnet_model::preprocess::{decode_rgb, load_rgb, Preprocessing};
use alexnet_model::tensor::HostTensor;
use alexnet_model::weights::{read_safetensors, StateDict};
use alexnet_model::AlexNetError;
use image::RgbImage;

/// The full-pipeline fixtures: (source file, note).
const IMAGES: [(&str, &str); 7] = [
    ("landscape.png", "RGB 400×300"),
    ("portrait_odd.jpg", "RGB JPEG 263×357"),
    ("small_grey.png", "L 181×127, upsampled"),
    ("rgba_portrait.png", "RGBA 271×333"),
    ("palette.png", "P 513×389"),
    ("large.png", "RGB 700×520"),
    ("grey16.png", "16-bit grey 260×300"),
];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/preprocess")
        .join(name)
}

fn stem(name: &str) -> &str {
    name.rsplit_once('.').unwrap().0
}

/// A reference image written losslessly by the fixture script.
fn reference_png(name: &str) -> RgbImage {
    image::open(fixture(name)).unwrap().to_rgb8()
}

fn safetensors(name: &str) -> StateDict {
    read_safetensors(&std::fs::read(fixture(name)).unwrap())
        .unwrap()
        .0
}

/// The decoded image Pillow resized: its own JPEG decode where the decoders may differ.
fn pillow_input(name: &str) -> RgbImage {
    let decoded = fixture(&format!("{}.decoded.png", stem(name)));
    if decoded.exists() {
        image::open(decoded).unwrap().to_rgb8()
    } else {
        load_rgb(&fixture(name)).unwrap()
    }
}

fn max_pixel_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `[3, 224, 224]` at the rows and columns listed in the fixture's `sample`: `[3, n, n]`.
fn sample(tensor: &HostTensor, rows: &[usize]) -> Vec<f32> {
    let (h, w) = (tensor.shape[1], tensor.shape[2]);
    let mut out = Vec::new();
    for c in 0..3 {
        for &y in rows {
            for &x in rows {
                out.push(tensor.values[(c * h + y) * w + x]);
            }
        }
    }
    out
}

const SAMPLE: [usize; 15] = [
    0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 223,
];

/// One level of an 8-bit pixel after normalisation, for the channel with the smallest std.
fn one_level() -> f32 {
    1.0 / 255.0 / 0.224
}

#[test]
fn resize_matches_pillow() {
    let pre = Preprocessing::default();
    for (name, note) in IMAGES {
        let expected = reference_png(&format!("{}.resized.png", stem(name)));
        let resized = pre.resize_shorter(&pillow_input(name));
        assert_eq!(resized.dimensions(), expected.dimensions(), "{name}");
        let diff = max_pixel_diff(&resized, &expected);
        println!(
            "{name} ({note}) → {:?}: max |Δ| vs Pillow = {diff}",
            resized.dimensions()
        );
        assert!(diff <= 1, "{name}: resize differs from Pillow by {diff}");
    }
}

#[test]
fn png_sources_decode_like_pillow_end_to_end() {
    // From the file, through our decoder: PNG decoding is exact, so still Pillow's pixels.
    let pre = Preprocessing::default();
    for (name, _) in IMAGES.iter().filter(|(n, _)| n.ends_with(".png")) {
        let expected = reference_png(&format!("{}.resized.png", stem(name)));
        let resized = pre.resize_shorter(&load_rgb(&fixture(name)).unwrap());
        assert_eq!(max_pixel_diff(&resized, &expected), 0, "{name}");
    }
}

#[test]
fn jpeg_decodes_close_to_pillow() {
    // JPEG decoders are not bit-exact with each other (IDCT, chroma upsampling): the `image`
    // crate's decoder and Pillow's libjpeg differ by at most 4 levels on this file (measured).
    let ours = load_rgb(&fixture("portrait_odd.jpg")).unwrap();
    let pillow = reference_png("portrait_odd.decoded.png");
    let diff = max_pixel_diff(&ours, &pillow);
    let differing = ours
        .as_raw()
        .iter()
        .zip(pillow.as_raw())
        .filter(|(a, b)| a != b)
        .count();
    let pre = Preprocessing::default();
    let resized = max_pixel_diff(
        &pre.resize_shorter(&ours),
        &reference_png("portrait_odd.resized.png"),
    );
    let torchvision = &safetensors("portrait_odd.safetensors")["tensor_sample"];
    let tensor = max_abs_diff(
        &sample(&pre.center_view(&ours), &SAMPLE),
        &torchvision.values,
    );
    println!(
        "portrait_odd.jpg from the file: decode max |Δ| vs Pillow = {diff} ({differing} of {} \
         values differ), after resize {resized}, tensor {tensor:e}",
        ours.as_raw().len()
    );
    assert!(diff <= 4, "JPEG decode differs from Pillow by {diff}");
    assert!(tensor <= 4.0 * one_level(), "{tensor}");
}

#[test]
fn center_view_matches_torchvision() {
    let pre = Preprocessing::default();
    for (name, _) in IMAGES {
        let view = pre.center_view(&pillow_input(name));
        assert_eq!(view.shape, vec![3, 224, 224], "{name}");

        // Every value: torchvision's tensor is the normalised center crop of Pillow's resize
        // (the fixture script asserts this bit for bit).
        let resized = reference_png(&format!("{}.resized.png", stem(name)));
        let expected = pre.normalize(&pre.center_crop(&resized));
        let full = max_abs_diff(&view.values, &expected.values);

        // Sampled values straight from torchvision.
        let torchvision = &safetensors(&format!("{}.safetensors", stem(name)))["tensor_sample"];
        assert_eq!(torchvision.shape, vec![3, 15, 15]);
        let sampled = max_abs_diff(&sample(&view, &SAMPLE), &torchvision.values);
        println!("{name}: max |Δ| vs torchvision: all values {full:e}, sampled {sampled:e}");
        assert!(
            full <= one_level() && sampled <= one_level(),
            "{name}: {full} {sampled}"
        );
    }
}

#[test]
fn ten_crop_matches_torchvision() {
    let pre = Preprocessing::default();
    let img = load_rgb(&fixture("landscape.png")).unwrap();
    let views = pre.ten_crop(&img);
    assert_eq!(views.len(), 10);
    let torchvision = &safetensors("ten_crop.safetensors")["views"];
    assert_eq!(torchvision.shape, vec![10, 3, 15, 15]);
    let per_view = 3 * 15 * 15;
    for (i, view) in views.iter().enumerate() {
        assert_eq!(view.shape, vec![3, 224, 224]);
        let expected = &torchvision.values[i * per_view..(i + 1) * per_view];
        let diff = max_abs_diff(&sample(view, &SAMPLE), expected);
        assert!(diff <= one_level(), "view {i}: {diff}");
    }
    // Order: the center crop is the inference view; views 5..10 crop the mirrored image, so
    // its top-left (5) mirrors the top-right (1) and its top-right (6) the top-left (0).
    assert_eq!(views[4], pre.center_view(&img));
    let mirror = |t: &HostTensor| {
        let mut m = t.clone();
        for row in m.values.chunks_exact_mut(224) {
            row.reverse();
        }
        m
    };
    for (flipped, original) in [(5, 1), (6, 0), (7, 3), (8, 2)] {
        assert_eq!(views[flipped], mirror(&views[original]), "view {flipped}");
    }
    // 341 - 224 = 117 is odd: torchvision rounds 58.5 to 58 in both images, so the mirrored
    // center is one column off the mirror of the center.
    assert_ne!(views[9], mirror(&views[4]));
}

#[test]
fn modes_convert_like_pillow() {
    let expected = safetensors("modes.safetensors");
    for (mode, tensor) in &expected {
        let img = load_rgb(&fixture(&format!("modes/{mode}.png"))).unwrap();
        let (w, h) = img.dimensions();
        assert_eq!(tensor.shape, vec![h as usize, w as usize, 3], "{mode}");
        let want: Vec<u8> = tensor.values.iter().map(|&v| v as u8).collect();
        assert_eq!(img.as_raw(), &want, "{mode}");
    }
    // l, la, rgba, p, p_transparent: Pillow's convert("RGB"); rgb16 and grey16: v >> 8.
    assert_eq!(expected.len(), 7);
}

#[test]
fn decode_from_memory_is_load_from_file() {
    let path = fixture("palette.png");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(decode_rgb(&bytes).unwrap(), load_rgb(&path).unwrap());
}

#[test]
fn format_comes_from_content_not_extension() {
    let dir = scratch_dir("ext");
    let path = dir.join("really_a_png.jpg");
    std::fs::copy(fixture("landscape.png"), &path).unwrap();
    assert_eq!(
        load_rgb(&path).unwrap(),
        load_rgb(&fixture("landscape.png")).unwrap()
    );
    std::fs::remove_dir_all(dir).unwrap();
}

fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alexnet-preprocess-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bad_files_are_errors_naming_the_path() {
    let dir = scratch_dir("bad");
    let png = std::fs::read(fixture("landscape.png")).unwrap();
    let mut corrupt = png.clone();
    for b in &mut corrupt[100..2000] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    let cases: [(&str, Vec<u8>); 5] = [
        ("truncated.png", png[..png.len() / 2].to_vec()),
        ("corrupt.png", corrupt),
        ("notes.txt", b"this is not an image\n".to_vec()),
        ("empty.jpg", Vec::new()),
        ("header_only.png", png[..40].to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        match load_rgb(&path) {
            Err(AlexNetError::Input(msg)) => {
                println!("{msg}");
                assert!(msg.contains(&path.display().to_string()), "{msg}");
                assert!(!msg.contains('\n'), "one line: {msg}");
            }
            other => panic!("{name}: expected an input error, got {other:?}"),
        }
        assert!(matches!(decode_rgb(&bytes), Err(AlexNetError::Input(_))));
    }
    let missing = dir.join("missing.png");
    let err = load_rgb(&missing).unwrap_err().to_string();
    assert!(err.contains("missing.png"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn resized_sizes_follow_torchvision() {
    let pre = Preprocessing::default();
    let size = |w, h| pre.resize_shorter(&RgbImage::new(w, h)).dimensions();
    assert_eq!(size(400, 300), (341, 256)); // int(256 * 400 / 300) = int(341.33)
    assert_eq!(size(300, 400), (256, 341));
    assert_eq!(size(181, 127), (364, 256)); // upsampled
    assert_eq!(size(256, 700), (256, 700)); // already the right size: unchanged
    assert_eq!(size(300, 300), (256, 256));
    // A constant image stays constant through the filter.
    let grey = RgbImage::from_pixel(333, 517, image::Rgb([7, 128, 250]));
    let resized = pre.resize_shorter(&grey);
    assert!(resized.pixels().all(|p| p.0 == [7, 128, 250]));
}

#[test]
fn center_crop_offsets_follow_torchvision() {
    let pre = Preprocessing {
        crop: 2,
        ..Preprocessing::default()
    };
    // Pixel value = column index, so the crop's first value is the left offset.
    let columns =
        |w: u32, h: u32| RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 0]));
    let origin = |img: &RgbImage| {
        let p = pre.center_crop(img).get_pixel(0, 0).0;
        (p[0], p[1])
    };
    assert_eq!(origin(&columns(5, 5)), (2, 2)); // round(1.5) = 2
    assert_eq!(origin(&columns(7, 4)), (2, 1)); // round(2.5) = 2 (half to even), round(1.0)
    assert_eq!(origin(&columns(9, 6)), (4, 2)); // round(3.5) = 4
                                                // Smaller than the crop: zero-padded by (crop - size) // 2 before, as torchvision pads.
    let pre = Preprocessing {
        crop: 4,
        ..Preprocessing::default()
    };
    let crop = pre.center_crop(&RgbImage::from_pixel(1, 6, image::Rgb([9, 9, 9])));
    assert_eq!(crop.dimensions(), (4, 4));
    let row: Vec<u8> = (0..4).map(|x| crop.get_pixel(x, 0).0[0]).collect();
    assert_eq!(row, vec![0, 9, 0, 0]);
}

#[test]
fn normalize_is_chw_and_torchvision_arithmetic() {
    let pre = Preprocessing::default();
    let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 100, y as u8 * 255, 17]));
    let t = pre.normalize(&img);
    assert_eq!(t.shape, vec![3, 2, 3]);
    let at = |c: usize, y: usize, x: usize| t.values[(c * 2 + y) * 3 + x];
    assert_eq!(at(0, 0, 2), (200.0 / 255.0 - 0.485) / 0.229);
    assert_eq!(at(1, 1, 0), (1.0 - 0.456) / 0.224);
    assert_eq!(at(2, 1, 1), (17.0 / 255.0 - 0.406) / 0.225);
}

#[test]
fn validate_rejects_unusable_values() {
    assert_eq!(Preprocessing::default().validate(), Ok(()));
    let bad = [
        Preprocessing {
            crop: 300,
            ..Default::default()
        },
        Preprocessing {
            resize: 0,
            ..Default::default()
        },
        Preprocessing {
            crop: 0,
            ..Default::default()
        },
        Preprocessing {
            std: [0.229, 0.0, 0.225],
            ..Default::default()
        },
        Preprocessing {
            mean: [f32::NAN, 0.0, 0.0],
            ..Default::default()
        },
    ];
    for pre in bad {
        match pre.validate() {
            Err(AlexNetError::InvalidConfig(msg)) => println!("{msg}"),
            other => panic!("{pre:?}: {other:?}"),
        }
    }
}

/// Caffe's transform for `bvlc_alexnet` (256×256, center 227, BGR, 0–255 minus the mean
/// pixel) against the fixture script's numpy version of it, from the PNG files.
#[test]
fn caffe_transform_matches_the_reference() {
    let expected = safetensors("caffe.safetensors");
    let rows: Vec<usize> = (0..227).step_by(16).chain([226]).collect();
    let pre = Preprocessing::caffe();
    for name in ["landscape.png", "rgba_portrait.png"] {
        let view = pre.center_view(&load_rgb(&fixture(name)).unwrap());
        assert_eq!(view.shape, vec![3, 227, 227], "{name}");
        let diff = max_abs_diff(&sample(&view, &rows), &expected[stem(name)].values);
        // Values are whole pixel levels minus whole means: equal, or one level where the
        // resize rounds differently.
        println!("{name}: max |Δ| {diff}");
        assert!(diff <= 1.0, "{name}: differs from the reference by {diff}");
    }
}
