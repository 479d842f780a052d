//! Scenarios of the delay_emergency_response workflow (to be written).
