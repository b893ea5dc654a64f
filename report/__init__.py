"""The quality report for the Presidency Pro-Tempore."""
