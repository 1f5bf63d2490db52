/// mimalloc: the server allocates many small, short-lived buffers per request (rows,
/// JSON, headers), where it spends markedly less than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mtpaas::cli::run().await
}
