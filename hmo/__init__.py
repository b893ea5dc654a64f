"""What every stage shares: settings and paths, exception types, the warehouse connection and the event log.

It imports no stage, so ingest, expectations, harmonise, flows and report all
import it without importing each other.
"""
