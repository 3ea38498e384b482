"""Learning-rule plugins: parameters, explicit state, and pure step functions."""
