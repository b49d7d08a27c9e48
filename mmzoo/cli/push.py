"""``mmzoo push``: publish a trained model to the Hugging Face Hub and print the revision that pins it."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

HELP = "publish a run directory (or a save_pretrained model directory) to a Hub repo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN_DIR_OR_MODEL_DIR",
                        help="a training run directory (its model/, or a checkpoint with --checkpoint) or a "
                             "directory written by save_pretrained")
    parser.add_argument("repo_id", metavar="ORG/REPO", help="the Hub repo to publish to (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo as private (if it is new)")
    parser.add_argument("--branch", metavar="B", help="commit to this branch (created from main if missing)")
    parser.add_argument("--message", "-m", metavar="M", help="commit message")
    parser.add_argument("--token", metavar="T",
                        help="Hub token with write access (default: HF_TOKEN or the stored login)")
    parser.add_argument("--license", metavar="ID", help="license id for the model card (e.g. apache-2.0)")
    parser.add_argument("--checkpoint", metavar="WHICH",
                        help="publish a checkpoint of the run instead of its model/: best (by the run's "
                             "best_metric), last, or step-N")
    parser.add_argument("--overwrite-card", action="store_true",
                        help="replace the repo's README.md with a fresh card (default: keep the author's text "
                             "and update only mmzoo's metadata and generated block)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from mmzoo.hub import push_to_hub

    with warnings.catch_warnings():  # shown below as one line each, not with Python's file:line prefix
        warnings.simplefilter("ignore", UserWarning)
        result = push_to_hub(args.source, args.repo_id, private=args.private, branch=args.branch,
                             message=args.message, token=args.token, license=args.license,
                             checkpoint=args.checkpoint, overwrite_card=args.overwrite_card)
    for note in result.warnings:
        print(f"warning: {note}", file=sys.stderr)
    if args.json:
        print(json.dumps({"repo_id": result.repo_id, "revision": result.revision, "branch": result.branch,
                          "url": result.url, "commit_url": result.commit_url, "files": result.files,
                          "sha256": result.sha256, "warnings": result.warnings,
                          "registry_entry": {result.name: result.registry_entry}},
                         indent=2))
        return 0
    print(f"pushed {', '.join(result.files)} to {result.url} ({result.branch})")
    print(f"revision: {result.revision}")
    print(f"load it with: mmzoo.create_model(\"hf-hub:{result.repo_id}@{result.revision}\")")
    print("registry.yaml entry pinning this revision (under models:):")
    print("\n".join("  " + line for line in result.registry_yaml.rstrip().splitlines()))
    return 0
