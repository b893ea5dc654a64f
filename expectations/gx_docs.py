"""The checkpoint's Data Docs action: each site built once a run, from a store of its own, kept short.

GX's `UpdateDataDocsAction` builds every site once per validation result
(three a run here), re-renders the suite pages each time and lists every
stored result each time: with 3,000 results stored that is seconds a run. It
also reads one validation results store for every site, and a country's
statisticians must never see another country's failures. So this action
(a subclass, registered with GX under its own `type`, as GX documents custom
actions):

- reads each site's store from the site's own config (`site_section_builders:
  validations: source_store_name`, GX's setting), and copies the run's results
  into every store the checkpoint did not write itself: the staff site's store
  gets every country's results, a country's site only its own (the run's
  context writes to that country's partition, `expectations/suites.py`);
- keeps the newest `keep_results` results in each site's store and deletes
  the rest; GX then drops their pages from the site when it rebuilds the
  index (the index lists only pages whose result is still stored);
- builds each site once, with the run's results, and renders a suite page only
  when the site lacks it or the suite file is newer.

The sites' views (`view:` in great_expectations.yml, GX's setting) are GX's
own page views with one change: the templates they compile are kept (Jinja's
bytecode cache). GX makes a Jinja environment per page view, so it compiled
its ~30 templates again for every site it built: a third of this action's time.

It never builds a site for results it was not given: no full
`build_data_docs()`, which would render every stored result into every site.
"""
from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any, Literal

import jinja2
from great_expectations.checkpoint import UpdateDataDocsAction
from great_expectations.checkpoint.checkpoint import CheckpointResult
from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView


class UpdateSiteDataDocsAction(UpdateDataDocsAction):
    # GX finds an action class by this field when it loads the checkpoint file.
    type: Literal["hmo_update_site_data_docs"] = "hmo_update_site_data_docs"  # type: ignore[assignment]

    keep_results: int = 120

    def run(self, checkpoint_result: CheckpointResult, action_context: Any = None) -> dict:
        context = self._resolve_context().context
        results = checkpoint_result.run_results
        # `site_names: []` means "every site" to GX: never that here.
        if not self.site_names:
            raise ValueError(f"action {self.name}: name the sites to build")
        sites = context.variables.data_docs_sites or {}
        default_store = str(context.validation_results_store_name)
        suites = {ExpectationSuiteIdentifier(name=result.suite_name) for result in results.values()}
        urls: dict[str, Any] = {}
        for site_name in self.site_names:
            store_name = _source_store_name(sites[site_name], default_store)
            store = context.stores[store_name]
            if store_name != default_store:
                for key, result in results.items():
                    store.set(key, result)
            _keep_newest(store, self.keep_results)
            stale = [suite for suite in suites if _page_is_stale(context, site_name, suite)]
            urls.update(self._build_data_docs(site_names=[site_name], resource_identifiers=[*results, *stale]))
        return urls  # site name -> its index page


def _source_store_name(site_config: dict, default: str) -> str:
    sections = site_config.get("site_section_builders") or {}
    validations = sections.get("validations") or {}
    return validations.get("source_store_name") or default


def _keep_newest(store: Any, keep: int) -> None:
    # The backend's keys are tuples (suite, run name, run time, batch) whose run time sorts as
    # text; the store's own keys would parse a date for each.
    backend = store.store_backend
    keys = sorted(backend.list_keys(), key=lambda key: key[-2])
    for key in keys[: max(len(keys) - keep, 0)]:
        backend.remove_key(key)


def _page_is_stale(context: Any, site_name: str, suite: ExpectationSuiteIdentifier) -> bool:
    [entry] = context.get_docs_sites_urls(resource_identifier=suite, site_names=[site_name], only_if_exists=True)
    if not entry["site_url"]:
        return True
    page = Path(urllib.parse.unquote(urllib.parse.urlparse(entry["site_url"]).path))
    # The suites are files of the project (committed): a checkout or an edit makes them newer than their page.
    source = Path(context.expectations_store.store_backend.full_base_directory) / f"{suite.name}.json"
    return not page.exists() or page.stat().st_mtime < source.stat().st_mtime


class _CompiledInMemory(jinja2.BytecodeCache):
    """Jinja's compiled templates, kept for the life of the process (both sites of a run,
    every run of `hmo serve`). In memory, not Jinja's file cache: that one writes to the
    user's temporary directory, and a run writes nothing outside the data directory."""

    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if bucket.key in self._compiled:
            bucket.bytecode_from_string(self._compiled[bucket.key])

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledInMemory()


class PageView(DefaultJinjaPageView):
    """GX's page view (suites, validation results), its templates compiled once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _COMPILED


class IndexPageView(DefaultJinjaIndexPageView):
    """GX's index page view, its templates compiled once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _COMPILED
