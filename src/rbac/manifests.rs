//! RBAC objects from manifest files, through the project's manifest loader.

use crate::loader::{Input, Loader};
use crate::model::Inventory;

/// Reads the manifests at `paths` (`-` is standard input) into an inventory;
/// the loader's errors (unreadable files, invalid documents) are returned
/// as one message each.
pub fn read_inventory(paths: &[String]) -> Result<Inventory, Vec<String>> {
    let inputs: Vec<Input> = paths.iter().map(Input::from_arg).collect();
    let loaded = Loader::new().load(&inputs);
    if !loaded.errors.is_empty() {
        return Err(loaded.errors.iter().map(ToString::to_string).collect());
    }
    Ok(Inventory::from_resources(
        loaded.objects.iter().map(|o| &o.resource),
    ))
}
