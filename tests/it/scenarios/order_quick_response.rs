//! Scenarios of the order_quick_response workflow (to be written).
