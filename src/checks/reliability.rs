//! Checks of this category.

use crate::engine::Check;

pub static CHECKS: &[&Check] = &[];
