//! Whole plans built from an observed deployment, without AWS.

use super::*;

#[test]
fn every_step_has_its_own_checkpoint_in_order() {
    let names: Vec<&str> = STEPS.iter().map(|s| s.checkpoint).collect();
    assert_eq!(crate::checkpoint::STEPS, names.as_slice());
}
