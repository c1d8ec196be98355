"""Importers: model files -> xnorinfer.ir.Graph."""
