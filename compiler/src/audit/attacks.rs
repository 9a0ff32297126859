//! FGSM and membership inference (filled in by the attacks work).
