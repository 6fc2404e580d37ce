//! demo_portal
