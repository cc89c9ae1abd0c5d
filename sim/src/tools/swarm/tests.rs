//! Unit tests of [`super`] (`swarm`).

use super::*;

#[test]
fn partitions_parse_and_reject_nonsense() {
    assert_eq!("2/4".parse(), Ok(Partition { k: 2, n: 4 }));
    for bad in ["0/2", "3/2", "1/0", "x", "1/", "/2"] {
        assert!(bad.parse::<Partition>().is_err(), "{bad}");
    }
}

#[test]
fn every_seed_is_in_exactly_one_part() {
    for n in 1..6 {
        for seed in 0..50 {
            let parts = (1..=n)
                .filter(|k| Partition { k: *k, n }.contains(seed))
                .count();
            assert_eq!(parts, 1);
        }
    }
}
