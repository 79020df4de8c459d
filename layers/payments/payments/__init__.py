"""Domain code shared by the payment workflow's functions (packaged as PaymentsLayer)."""
