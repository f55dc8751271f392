"""The pipeline's story: Prefect flows, deployments, event triggers and the `toonfarm` CLI."""
