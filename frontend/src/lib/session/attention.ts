// The "your turn" cues of a session page: the document title (with `(awaiting instructions)` while a
// finished turn waits in a hidden tab) and the completion ding (880 Hz, ~0.22 s, Web Audio).

export const AWAITING = '(awaiting instructions)';

export function sessionTitle(name: string, awaiting: boolean): string {
	return awaiting ? `${name} — piface ${AWAITING}` : `${name} — piface`;
}

let ctx: AudioContext | null = null;

/** Plays the ding; silent when the browser blocks audio (no user gesture yet). */
export function ding(): void {
	try {
		const AC = window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
		if (!AC) return;
		ctx ??= new AC();
		const t = ctx.currentTime;
		const osc = ctx.createOscillator();
		const gain = ctx.createGain();
		osc.type = 'sine';
		osc.frequency.value = 880;
		gain.gain.setValueAtTime(0.0001, t);
		gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
		gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.22);
		osc.connect(gain).connect(ctx.destination);
		osc.start(t);
		osc.stop(t + 0.24);
	} catch {
		// Audio is a nicety.
	}
}
