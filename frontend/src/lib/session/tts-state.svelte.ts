// Page-wide Listen state: whether a TTS request is pending (all Listen buttons wait) and which player plays.
export const tts = $state<{ generating: boolean; playing: HTMLAudioElement | null }>({ generating: false, playing: null });
