//! The `deploy-protected` command: embed (transform) and deploy.
