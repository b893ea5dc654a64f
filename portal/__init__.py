"""The country portal: the web space where each country signs in, sends its files and reads its answers.

Served by `hmo serve` (flows/service.py mounts it at /portal). Nothing about
validation lives here: an upload becomes a file in the country's inbox, as a
dropped file does, and the pipeline answers it.
"""
