// Page-wide Listen state: whether a TTS request is pending (every Listen button waits meanwhile) and which
// player's audio plays (starting another pauses it: one message plays at a time).
export const tts = $state<{ generating: boolean; playing: HTMLAudioElement | null }>({ generating: false, playing: null });
