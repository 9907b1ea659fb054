//! Event types of the fundledger log.
