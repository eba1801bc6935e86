//! Fuzzing the CIFAR binary reader: any bytes end in records or a one-line error naming the
//! file, never a panic. 256 cases per property by default (`PROPTEST_CASES` raises them).

use alexnet_common::cifar::{parse_records, CifarKind};
use proptest::prelude::*;

/// Bytes of one image, planar RGB.
const IMAGE: usize = 32 * 32 * 3;

fn kind() -> impl Strategy<Value = CifarKind> {
    prop_oneof![
        Just(CifarKind::Cifar10),
        Just(CifarKind::Cifar100Fine),
        Just(CifarKind::Cifar100Coarse),
    ]
}

fn check(bytes: &[u8], kind: CifarKind) -> Result<(), TestCaseError> {
    match parse_records(bytes, kind, "batch.bin") {
        Ok(records) => {
            for record in records {
                prop_assert!(record.label < kind.num_classes());
                prop_assert_eq!(record.pixels.len(), IMAGE);
            }
        }
        Err(e) => {
            let text = e.to_string();
            prop_assert!(
                text.starts_with("batch.bin: ") && !text.contains('\n'),
                "{}",
                text
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..3 * IMAGE), kind in kind()) {
        check(&bytes, kind)?;
    }

    /// Whole records with random labels (the interesting bytes), the length moved a little
    /// around a record boundary.
    #[test]
    fn records_with_random_labels(
        labels in prop::collection::vec(any::<[u8; 2]>(), 1..4),
        extra in -2i64..3,
        kind in kind(),
    ) {
        let width = if kind == CifarKind::Cifar10 { 1 } else { 2 };
        let mut bytes = Vec::new();
        for label in &labels {
            bytes.extend_from_slice(&label[..width]);
            bytes.extend(std::iter::repeat_n(128u8, IMAGE));
        }
        let len = (bytes.len() as i64 + extra).max(0) as usize;
        bytes.resize(len, 0);
        check(&bytes, kind)?;
    }
}
