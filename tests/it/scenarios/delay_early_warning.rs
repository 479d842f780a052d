//! Scenarios of the delay_early_warning workflow (to be written).
