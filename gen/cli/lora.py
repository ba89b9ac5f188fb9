"""`gen lora add|list|remove`: LoRA adapters of a bundle with adapter slots, added without re-exporting."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="LoRA adapters as data: add, list and remove a slot bundle's adapters (no re-export).",
                  no_args_is_help=True)


@app.command()
def add(
    bundle: Annotated[str, typer.Argument(help="A bundle exported with --lora-slots, or a served pipeline's REPOSITORY/NAME/1 (a running server uses it from its next request).")],
    file: Annotated[str, typer.Argument(help="The adapter: a diffusers- or PEFT-format .safetensors (UNet attention layers), a `gen train sd-lora` run, or a diffusers LoRA folder. Pickled files are refused.")],
    name: Annotated[str, typer.Option(help="The adapter's name, as generate(lora=NAME) and --lora take it.")],
) -> None:
    """Check the adapter against the bundle's slots (layers, sizes, rank, base) and add it as loras/NAME.safetensors.

    Example:  gen lora add bundles/sd15 runs/pets --name pets   (then: gen generate bundles/sd15 --prompt "a dog" --lora pets)
    """
    from gen.runtime.lora_store import add_lora

    e = add_lora(bundle, file, name)
    pad = f", zero-padded to the slots' rank {e['slot_rank']}" if e["padded"] else ""
    typer.echo(f"added {name}: rank {e['rank']}{pad}, {e['layers']} layers, sha256 {e['sha256'][:12]} "
               f"(try: gen generate {bundle} --prompt \"a red house\" --lora {name})")


@app.command("list")
def list_(bundle: Annotated[str, typer.Argument(help="A bundle with LoRA slots (or a served pipeline's folder).")]) -> None:
    """The bundle's adapters: name, rank, layers, size."""
    from gen.runtime.lora_store import list_loras

    adapters = list_loras(bundle)
    if not adapters:
        typer.echo(f"no adapters in {bundle} (add one: gen lora add {bundle} FILE --name NAME)")
    for name, e in sorted(adapters.items()):
        typer.echo(f"{name}  rank {e['rank']}  {e['layers']} layers  {e['bytes']} bytes  from {e.get('source')}")


@app.command()
def remove(
    bundle: Annotated[str, typer.Argument(help="A bundle with LoRA slots (or a served pipeline's folder).")],
    name: Annotated[str, typer.Argument(help="The adapter to remove.")],
) -> None:
    """Remove an adapter (requests already running keep it; later ones are refused naming the adapters left)."""
    from gen.runtime.lora_store import remove_lora

    remove_lora(bundle, name)
    typer.echo(f"removed {name} from {bundle}")
