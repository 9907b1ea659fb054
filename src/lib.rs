//! fundledger
