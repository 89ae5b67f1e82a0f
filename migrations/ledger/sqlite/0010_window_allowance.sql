-- An account's outflow window keeps its remaining allowance rather than its outflow: a
-- transfer then compares the amount with it and subtracts what it moved, on 32 bits when
-- the limit fits them. `window_base` is the plaintext limit the allowance was counted
-- against, so a limit changed mid-window carries the window's outflow over. Windows
-- written before this migration keep their outflow in `window_spent` until their next
-- transfer converts it.
ALTER TABLE accounts ADD COLUMN window_remaining BLOB NULL;
ALTER TABLE accounts ADD COLUMN window_base INTEGER NULL;
