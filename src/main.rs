/// mimalloc, or the platform's allocator for the operator: see
/// `palisade::allocator`.
#[global_allocator]
static ALLOCATOR: palisade::allocator::Allocator = palisade::allocator::Allocator::new();

fn main() -> std::process::ExitCode {
    palisade::allocator::tune();
    palisade::cli::main()
}
