#[tokio::main]
async fn main() -> anyhow::Result<()> {
    mtpaas::cli::run().await
}
