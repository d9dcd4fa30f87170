//! CNAF, the web application firewall.
