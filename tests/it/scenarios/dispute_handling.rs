//! Scenarios of the dispute_handling workflow (to be written).
