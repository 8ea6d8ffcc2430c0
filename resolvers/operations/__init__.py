"""Operations: the job scheduler and its registered targets, monitoring figures, online sessions."""
