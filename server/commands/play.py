"""`promptsynth play`: the live host (OSC, MIDI, the model in a worker process)."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading

from server.commands.fx_args import add_effect_args, effect_values, send_values

__all__ = ["register", "run"]


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "play",
        help="play live: OSC and MIDI in, audio out, prompts turned into patches",
        description="Start the live instrument host. Stop it with Ctrl-C (or SIGTERM): all "
        "notes off, stream closed, recording finalised. OSC addresses: docs/osc.md.",
    )
    a = p.add_argument_group("audio")
    a.add_argument(
        "--device", help="output device: index or part of its name (`promptsynth devices`)"
    )
    a.add_argument(
        "--sample-rate",
        type=int,
        default=48000,
        help="Hz; with JACK it must equal jackd's (default 48000)",
    )
    a.add_argument(
        "--blocksize", type=int, default=128, help="frames per audio block (default 128)"
    )
    a.add_argument(
        "--latency",
        default="low",
        help="with --render ahead: how far ahead of the device the engine renders: 'low' (2 blocks: 10.7 ms from "
        "a note to its sound at 128 frames under JACK), 'high' (4 blocks: more margin on a "
        "busy machine: 16 ms in all) or seconds (default low); the ready line prints the total",
    )
    a.add_argument(
        "--render",
        choices=("cycle", "ahead"),
        default="ahead",
        help="'ahead' (default): render --latency ahead of the device, through PortAudio (any "
        "device; a margin for a busy machine); 'cycle': render each block in JACK's own cycle, a "
        "JACK MIDI key sounding in the cycle it arrives, as with FluidSynth (no margin: for a "
        "quiet machine; docs/engine.md, \"Real time\")",
    )
    a.add_argument(
        "--voices", type=int, default=32, help="most notes sounding at once (default 32)"
    )
    a.add_argument(
        "--record", metavar="FILE.wav", help="also write what is played to this WAV file"
    )
    o = p.add_argument_group("OSC")
    o.add_argument(
        "--osc-host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface)",
    )
    o.add_argument(
        "--osc-port", type=int, default=9000, help="UDP port (default 9000; 0 picks a free one)"
    )
    o.add_argument(
        "--allow",
        action="append",
        default=None,
        metavar="CIDR",
        help="accept OSC only from this address or network, e.g. 192.168.1.0/24 (repeatable; "
        "packets from elsewhere are dropped unanswered and counted in /status). "
        "Default: every sender that can reach --osc-host",
    )
    w = p.add_argument_group("the page (docs/web.md)")
    w.add_argument(
        "--web",
        metavar="PORT",
        nargs="?",
        type=int,
        const=8000,
        default=None,
        help="serve the page for a browser on PORT (default 8000; 0 picks a free one): "
        "prompts, the bank, morph, knobs and meters; its address is on the ready line",
    )
    w.add_argument(
        "--web-host",
        default="127.0.0.1",
        help="address the page listens on (default 127.0.0.1: this machine only); any other, "
        "e.g. 0.0.0.0 for a tablet on the network, needs the access token printed once in the "
        "page's address on the ready line",
    )
    m = p.add_argument_group("MIDI")
    m.add_argument(
        "--midi-in",
        action="append",
        default=[],
        metavar="NAME",
        help="play from the MIDI source whose name contains NAME, whenever it is there: "
        "connected when it appears (now or later), its notes released when it vanishes; "
        "'all': every MIDI source, those that appear later included (repeatable)",
    )
    m.add_argument(
        "--midi-virtual",
        action="append",
        default=[],
        metavar="NAME",
        help="open a virtual MIDI input called NAME that others connect to (repeatable)",
    )
    m.add_argument(
        "--bank-next-cc",
        type=int,
        metavar="N",
        help="a press of controller N (a value of 64 or more: a button, a footswitch) plays the "
        "channel's next bank patch, as OSC /bank/next (a controller the engine does not act on, "
        "such as 3, 9, 14-31, 85-90, 102-119)",
    )
    m.add_argument(
        "--bank-prev-cc",
        type=int,
        metavar="N",
        help="a press of controller N plays the channel's previous bank patch, as OSC /bank/prev",
    )
    m.add_argument("--list-midi", action="store_true", help="list MIDI sources and exit")
    s = p.add_argument_group("sound")
    s.add_argument(
        "--model", metavar="PATH", help="model checkpoint folder (default: the shipped one)"
    )
    s.add_argument(
        "--no-model",
        action="store_true",
        help="do not start the model (prompts fail; patches and the bank work)",
    )
    s.add_argument("--prompt", help="first patch, from this prompt (channel 1)")
    s.add_argument(
        "--no-prompt-line",
        action="store_true",
        help="in a terminal, do not read prompts and commands from it (without a terminal "
        "there is none anyway)",
    )
    s.add_argument(
        "--patch",
        metavar="NAME_OR_FILE",
        help="first patch (channel 1): a bank name or a patch file",
    )
    s.add_argument(
        "--velocity-curve",
        metavar="CURVE",
        default="medium",
        help="loudness from key velocity, (velocity/127)^EXPONENT: soft (0.75), linear (1), "
        "medium (1.5, the default), hard (2.5), or an EXPONENT in 0.25..4; a patch's "
        "velocity layers still apply",
    )
    s.add_argument(
        "--tuning",
        metavar="FILE.scl",
        help="play in this Scala scale (default: twelve-tone equal temperament); degree 0 "
        "on key 60 at 261.63 Hz unless --keymap says otherwise",
    )
    s.add_argument("--keymap", metavar="FILE.kbm", help="the Scala keyboard mapping for --tuning")
    s.add_argument(
        "--mpe",
        metavar="MEMBERS",
        nargs="?",
        type=int,
        const=15,
        default=None,
        help="MPE, the lower zone: MIDI channel 1 its master, channels 2..MEMBERS+1 (default "
        "15: 2..16) one note each, whose pitch bend (48 semitones), pressure and CC 74 act on "
        "that note alone; a controller's MPE Configuration Message (RPN 6 on channel 1) turns "
        "it on too",
    )
    s.add_argument(
        "--tuning-dir",
        metavar="DIR",
        help="let OSC /tuning/scl read .scl and .kbm files in this folder (and only there)",
    )
    add_effect_args(p)
    s.add_argument("--bank", metavar="DIR", help="patch bank folder (default: the user's bank)")
    s.add_argument(
        "--audio-dir",
        metavar="DIR",
        help="let OSC /patch/from-audio make patches from recordings in this folder (and only there)",
    )
    p.set_defaults(func=run)
    from server.cli import example

    example(p, 'promptsynth play --prompt "a warm nylon guitar" --midi-virtual promptsynth')


def _latency(text: str) -> float | str:
    """'low', 'high' or seconds; the range is checked against the block by the output."""
    if text in ("low", "high"):
        return text
    try:
        return float(text)
    except ValueError:
        from server.cli import CliError

        raise CliError(
            f"--latency must be 'low', 'high' or seconds of render-ahead, got {text!r}"
        ) from None


def _device(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def run(args: argparse.Namespace) -> int:
    from server.cli import CliError
    from server.oscargs import MAX_TEXT_CHARS

    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    if args.list_midi:
        from server.midi_in import MidiError, list_inputs

        try:
            names = list_inputs()
        except MidiError as exc:
            raise CliError(str(exc)) from None
        print("\n".join(names) if names else "no MIDI sources now")
        print("(--midi-in NAME plays from the one whose name contains NAME, --midi-in all from "
              "every one; both also connect those that appear later)")
        return 0
    if args.prompt is not None and args.patch is not None:
        raise CliError("give --prompt or --patch, not both")
    if args.no_model and args.prompt is not None:
        raise CliError("--prompt needs the model; drop --no-model")
    if args.mpe is not None and not 1 <= args.mpe <= 15:
        raise CliError(f"--mpe takes 1..15 member channels, got {args.mpe}")
    if args.keymap is not None and args.tuning is None:
        raise CliError("--keymap needs --tuning FILE.scl (a keyboard mapping maps a scale)")
    if args.tuning_dir is not None and not os.path.isdir(args.tuning_dir):
        raise CliError(f"--tuning-dir {args.tuning_dir}: not a folder")
    if args.audio_dir is not None and not os.path.isdir(args.audio_dir):
        raise CliError(f"--audio-dir {args.audio_dir}: not a folder")
    if args.web is not None and not 0 <= args.web <= 65535:
        raise CliError(f"--web must be a port in range 0..65535, got {args.web}")
    if not 0 <= args.osc_port <= 65535:
        raise CliError(f"--osc-port must be in range 0..65535, got {args.osc_port}")
    if args.prompt is not None and len(args.prompt) > MAX_TEXT_CHARS:
        raise CliError(
            f"--prompt must be at most {MAX_TEXT_CHARS} characters, got {len(args.prompt)}"
        )
    from server.osc import is_loopback, parse_networks

    try:
        allow = parse_networks(args.allow) if args.allow else None
    except ValueError as exc:
        raise CliError(str(exc)) from None

    from engine import AudioError
    from server.host import Host, HostConfig
    from server.midi_in import MidiError

    config = HostConfig(
        device=_device(args.device),
        sample_rate=args.sample_rate,
        blocksize=args.blocksize,
        latency=_latency(args.latency),
        render=args.render,
        max_voices=args.voices,
        osc_host=args.osc_host,
        osc_port=args.osc_port,
        osc_allow=allow,
        midi_in=args.midi_in,
        midi_virtual=args.midi_virtual,
        bank_next_cc=args.bank_next_cc,
        bank_prev_cc=args.bank_prev_cc,
        model=args.model,
        use_model=not args.no_model,
        bank=args.bank,
        record=args.record,
        audio_dir=args.audio_dir,
        velocity_curve=args.velocity_curve,
        tuning=args.tuning,
        keymap=args.keymap,
        tuning_dir=args.tuning_dir,
        effects=effect_values(args),
        sends=send_values(args),
        web_port=args.web,
        web_host=args.web_host,
        # Off this machine the page asks for a token: a new one each start, printed once.
        web_token=None if is_loopback(args.web_host) else secrets.token_urlsafe(16),
    )
    first = _first_patch(args) if args.patch is not None else None
    try:
        host = Host(config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stop = StopRequest()
    prompt_line = terminal = None
    old = {sig: signal.signal(sig, stop.on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            host.start()
        except (AudioError, MidiError, OSError) as exc:
            raise CliError(str(exc)) from None
        if args.model is not None and host.worker is not None and host.worker.state != "ready":
            raise CliError(f"--model {args.model}: {host.model_reason}")
        if args.mpe is not None:
            host.engine.set_mpe(args.mpe)
        if first is not None:
            host.channels.apply_bank_patch(0, first)
        if args.prompt is not None:
            if not _first_prompt(host, args.prompt):
                raise CliError(f"--prompt: {host.model_reason or 'prediction failed'}")
        if host.bank is None:
            print(f"promptsynth play: no patch bank ({host.bank_reason})", file=sys.stderr)
        for want in host.midi.waiting() if host.midi is not None else []:
            try:
                there = ", ".join(host.midi.available()) or "none"
            except MidiError:
                there = "unknown"
            print(
                f"promptsynth play: no MIDI source matches {want!r} yet; playing from it when "
                f"it appears (sources now: {there}; --list-midi lists them)",
                file=sys.stderr,
                flush=True,
            )
        if not is_loopback(host.osc.host):
            who = (
                "only " + ", ".join(str(n) for n in allow)
                if allow
                else "anyone who can reach this machine"
            )
            print(
                f"promptsynth play: warning: OSC listens on {host.osc.host}:{host.osc.port}, "
                f"not only this machine: {who} can play notes, send prompts and save patches "
                "(--allow CIDR limits it; docs/security.md)",
                file=sys.stderr,
                flush=True,
            )
        if host.web is not None and not is_loopback(host.web.host):
            print(
                f"promptsynth play: warning: the page listens on {host.web.host}:{host.web.port}, "
                "not only this machine: whoever has its address with the token (the ready line) "
                "can play, send prompts and save patches (docs/security.md)",
                file=sys.stderr,
                flush=True,
            )
        host.on_midi_change = lambda line: print(f"promptsynth play: {line}", file=sys.stderr, flush=True)
        print(host.describe(), flush=True)
        if sys.stdin.isatty() and not args.no_prompt_line:
            from server.prompt_line import PromptLine

            terminal = _save_terminal()
            prompt_line = PromptLine(host, stop.event).start()
        while not stop.wait(0.25):
            died = host.output.died
            if died or host.audio_stalled(AUDIO_TIMEOUT_S):
                _audio_died(host, died)
        return 0
    finally:
        stop.event.set()  # after a signal, for the prompt line's thread
        if prompt_line is not None:
            prompt_line.close()
            _restore_terminal(terminal)
        host.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)


class StopRequest:
    """Asks the play loop to stop: from a signal (Ctrl-C, SIGTERM) or from the prompt
    line's thread (:quit, Ctrl-D: it sets :attr:`event`).

    A signal handler runs in the main thread between two bytecodes, possibly inside
    ``Event.wait`` while that thread holds the event's lock; ``Event.set`` there waits for
    the same lock forever (Ctrl-C hung the host, now and then, in the tests). So the
    handler only appends to a list, which takes no lock, and :meth:`wait` polls both.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signals: list[int] = []

    def on_signal(self, signum, frame) -> None:
        self.signals.append(signum)

    def wait(self, timeout: float) -> bool:
        """True once a stop was asked for; else after ``timeout`` seconds, False."""
        return bool(self.signals) or self.event.wait(timeout) or bool(self.signals)


def _save_terminal():
    try:
        import termios

        return termios.tcgetattr(sys.stdin.fileno())
    except (ImportError, OSError, ValueError):
        return None


def _restore_terminal(attrs) -> None:
    """The prompt line's readline may be mid-line when the host stops: give the terminal
    back as it was."""
    if attrs is None:
        return
    try:
        import termios

        termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, attrs)
    except (ImportError, OSError, ValueError):
        pass


#: Seconds without a rendered block after which the audio server counts as gone.
AUDIO_TIMEOUT_S = 1.0
#: Exit status when the audio server stops or the device vanishes.
EXIT_AUDIO_LOST = 3


def _audio_died(host, reason: str | None = None) -> None:
    """The stream stopped (or the render process died): say so in one line, finalise
    the recording and exit with status 3 at once. Not through ``host.close()``: closing a
    PortAudio JACK stream whose server died blocks for seconds and then aborts."""
    host.abandon()
    what = reason or (
        f"audio server stopped (no audio for {AUDIO_TIMEOUT_S:g} s; "
        f"device: {host.config.device or 'default'})"
    )
    print(
        f"promptsynth play: error: {what}; exiting with status {EXIT_AUDIO_LOST}",
        file=sys.stderr,
        flush=True,
    )
    sys.stdout.flush()
    os._exit(EXIT_AUDIO_LOST)


def _first_patch(args):
    from server.cli import CliError

    try:
        from patches import Bank, PatchError, load_patch
    except ImportError as exc:
        raise CliError(f"--patch needs the patches package: {exc}") from None
    try:
        if os.path.isfile(args.patch):
            return load_patch(args.patch)
        return Bank(args.bank, factory=True).load(args.patch)
    except (PatchError, OSError) as exc:
        raise CliError(f"--patch {args.patch}: {exc}") from None


def _first_prompt(host, prompt: str) -> bool:
    """``--prompt``: the same way as OSC's /prompt (the model worker, applied by the host)."""
    from model.errors import PromptError, check_prompt
    from server.state import PatchTicket
    from server.worker import PatchRequest

    if host.worker is None or host.worker.state != "ready":
        return False
    try:
        text = check_prompt(prompt)
    except PromptError as exc:
        host.model_reason = str(exc)
        return False
    done = threading.Event()
    failed: list[str] = []

    def fail(reason: str) -> None:
        failed.append(reason)
        done.set()

    host.model.request(PatchRequest(text), PatchTicket(0, text, text, lambda table: done.set(), fail))
    if not done.wait(60.0):
        failed.append("prediction timed out")
    if failed:
        host.model_reason = failed[0]
        return False
    return True
