"""Asset checks. Each module-level AssetChecksDefinition is collected by definitions.py."""
