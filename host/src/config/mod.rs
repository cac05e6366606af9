//! Reading `pymanager.json`: serde model, defaults, and errors that name the field path.
