// The shapes of issue 14's big models, for the scripts that write random checkpoints of them
// (vocabulary sizes from the real checkpoints' config.json).
export const BIG_SHAPES = {
  'bert-base': { vocab: 30522, hidden: 768, layers: 12, heads: 12, intermediate: 3072, positions: 512 },
  bertimbau: { vocab: 29794, hidden: 768, layers: 12, heads: 12, intermediate: 3072, positions: 512 },
  mbert: { vocab: 119547, hidden: 768, layers: 12, heads: 12, intermediate: 3072, positions: 512 },
  'bert-large': { vocab: 30522, hidden: 1024, layers: 24, heads: 16, intermediate: 4096, positions: 512 },
};
