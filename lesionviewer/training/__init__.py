"""Training, synthesis and evaluation. Imported by nothing in engine/, io/, edit/ or app/."""
