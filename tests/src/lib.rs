//! Helpers shared by the integration tests (starting real parts: moto server, binaries).
